"""What every controller shares: a work queue of keys, and kopf's indexes bound on the first event."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..api.crd import GROUP, VERSION
from ..kube import Kube
from ..objects import merge_patch
from ..workqueue import WorkQueue

Key = tuple[str, str]


def one(index: Any, key: Any) -> dict | None:
    """The single object an index holds under a key, if any."""
    store = index.get(key)
    return next(iter(store), None) if store else None


def vms_listing(vms: Any, namespace: str, field: str, name: str) -> list[Key]:
    """Keys of the namespace's VMs whose spec list `field` (affinityGroups, sshKeyPairs) names `name`."""
    return sorted(
        (ns, vm_name)
        for (ns, vm_name), store in vms.items()
        if ns == namespace and any(name in (vm.get("spec") or {}).get(field, []) for vm in store)
    )


def _identity(meta: dict) -> Key:
    return meta.get("namespace", ""), meta["name"]


class Controller:
    """Events only queue keys; `reconcile(key)` does the work, level-triggered, one key at a time."""

    name = "controller"
    plural = ""  # the kind this controller writes the status of
    cluster_scoped = False

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        # (namespace, name) -> (the resourceVersion a status write was made over, the status written)
        self._written: dict[Key, tuple[str | None, dict]] = {}
        self.queue = WorkQueue(self.name, self.reconcile)
        self.indexes: Any = None

    async def write_status(self, obj: dict, status: BaseModel) -> bool:
        """The one way a controller writes status: a merge patch of what changed, nothing when nothing did."""
        patch = merge_patch(obj.get("status") or {}, status.model_dump(mode="json", exclude_none=True))
        if not patch:
            return False
        meta, api_version = obj["metadata"], f"{GROUP}/{VERSION}"
        if self.cluster_scoped:
            written = await self.kube.patch_cluster_status(api_version, self.plural, meta["name"], patch)
        else:
            written = await self.kube.patch_status(api_version, self.plural, meta["namespace"], meta["name"], patch)
        if written is not None:
            self._written[_identity(meta)] = (meta.get("resourceVersion"), written.get("status") or {})
        return True

    def fresh(self, key: Key, obj: dict | None) -> dict | None:
        """The object as the index holds it, with the status last written here if the index has not seen it yet.

        The index follows the API server a moment behind: a reconcile right after a status write
        would otherwise see the status before it, and write it (and its Event) a second time. The
        index is behind exactly while it still holds the version the write was made over.
        """
        if obj is None:
            self._written.pop(key, None)
            return None
        if (written := self._written.get(key)) is None:
            return obj
        over, status = written
        if obj["metadata"].get("resourceVersion") == over:
            return {**obj, "status": status}
        del self._written[key]  # the index has caught up (or moved past): it is the truth again
        return obj

    def enqueue(self, key: Key, indexes: Any) -> None:
        self.indexes = indexes
        self.queue.add(key)

    def all_keys(self) -> list[Key]:
        """What the periodic resync requeues."""
        return list(self.primary_index()) if self.indexes is not None else []

    def primary_index(self) -> Any:
        raise NotImplementedError

    async def reconcile(self, key: Key) -> None:
        raise NotImplementedError
