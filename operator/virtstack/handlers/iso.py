"""kopf wiring for ISO: the ISOs and their import DataVolumes, indexed; events only queue keys.

An ISO is requeued when it or its DataVolume changes, and when a VM that names it (or that its
status lists as a user) changes; the VMs that name an ISO are requeued when it changes.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..api.crd import GROUP, VERSION
from ..builders.iso import ISO_LABEL, iso_reference, vm_iso_references
from . import kept
from .virtualmachine import indexes_from

OWNED = {ISO_LABEL: kopf.PRESENT}


@kopf.index(GROUP, VERSION, "isos")
async def isos(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): kept.fields(body, "spec", "status")}


@kopf.index("cdi.kubevirt.io", "v1beta1", "datavolumes", labels=OWNED)
async def iso_imports(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[ISO_LABEL]): kept.fields(body, "status")}


def _enqueue(key: tuple[str, str], memo: kopf.Memo, kwargs: dict) -> None:
    memo.iso_controller.enqueue(
        key, {"isos": kwargs["isos"], "imports": kwargs["iso_imports"], "vms": kwargs["virtstack_vms"]}
    )


@kopf.on.event(GROUP, VERSION, "isos", id="iso-changed")
async def iso_changed(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """The ISO, and every VM naming it (one waiting for it may go on; a private ISO's foreign users stop)."""
    _enqueue((namespace, name), memo, kwargs)
    indexes = indexes_from(kwargs)
    for key, store in indexes.vms.items():
        if any(
            (ns, n) == (namespace, name) for vm in store for _, ns, n in vm_iso_references(key[0], vm.get("spec") or {})
        ):
            memo.vm_controller.enqueue(key, indexes)


@kopf.on.event("cdi.kubevirt.io", "v1beta1", "datavolumes", labels=OWNED, id="iso-import-changed")
async def iso_import_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[ISO_LABEL]), memo, kwargs)


@kopf.on.event(GROUP, VERSION, "virtualmachines", id="iso-user-changed")
async def iso_user_changed(namespace: str, name: str, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any) -> None:
    """ISOs the VM names now, and those that list it as a user (it may have let go of them)."""
    user = iso_reference(namespace, name)
    keys = {(ns, n) for _, ns, n in vm_iso_references(namespace, dict(spec or {}))}
    keys |= {key for key, store in kwargs["isos"].items() for iso in store if user in iso["status"].get("usedBy", [])}
    for key in keys:
        _enqueue(key, memo, kwargs)
