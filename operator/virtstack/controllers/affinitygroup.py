"""Reconcile one AffinityGroup's status from its members (VMs listing it) and where their VMIs run."""

from __future__ import annotations

from typing import Any

from ..api.affinitygroup import AffinityGroupSpec, AffinityGroupStatus
from ..api.crd import GROUP, VERSION
from ..builders.placement import ZONE_LABEL
from ..kube import Kube
from ..objects import merge_patch
from ..status.affinitygroup import group_status
from .base import Controller, Key, one

PLURAL = "affinitygroups"


class AffinityGroupController(Controller):
    name = "affinitygroup"

    def __init__(self, kube: Kube) -> None:
        super().__init__()
        self.kube = kube

    def primary_index(self) -> Any:
        return self.indexes.groups

    async def reconcile(self, key: Key) -> None:
        group = one(self.indexes.groups, key)
        if group is None or group["metadata"].get("deletionTimestamp"):
            return
        namespace, name = key
        members = sorted(
            vm_name
            for (ns, vm_name), store in self.indexes.vms.items()
            if ns == namespace and any(name in (vm.get("spec") or {}).get("affinityGroups", []) for vm in store)
        )
        placements = {}
        for member in members:
            host = ((one(self.indexes.vmis, (namespace, member)) or {}).get("status") or {}).get("nodeName")
            if host:
                node = one(self.indexes.nodes, host) or {}
                placements[member] = (host, node.get("labels", {}).get(ZONE_LABEL))
        current = group.get("status") or {}
        status = group_status(
            group["metadata"].get("generation", 1),
            AffinityGroupSpec.model_validate(group["spec"]),
            placements,
            members,
            AffinityGroupStatus.model_validate(current),
        )
        patch = merge_patch(current, status.model_dump(mode="json", exclude_none=True))
        if patch:
            await self.kube.patch_status(f"{GROUP}/{VERSION}", PLURAL, namespace, name, patch)
