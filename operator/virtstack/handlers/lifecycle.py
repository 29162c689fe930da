"""kopf wiring for live migration and root-disk replacement: the VM's migrations and root DataVolumes, indexed.

As everywhere, events only queue the VM's key; the VM controller reads these indexes.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..builders.labels import VM_LABEL
from . import kept
from .virtualmachine import KUBEVIRT, OWNED, indexes_from

CDI = ("cdi.kubevirt.io", "v1beta1")
# KubeVirt labels each DataVolume it makes from a VM's dataVolumeTemplates with the VM's UID.
CREATED_BY_VM = {"kubevirt.io/created-by": kopf.PRESENT}


def _owning_vm(body: kopf.Body) -> str | None:
    """The KubeVirt VM (named as ours) that made this DataVolume from its template."""
    return next(
        (
            ref["name"]
            for ref in body["metadata"].get("ownerReferences") or []
            if ref.get("kind") == "VirtualMachine" and ref.get("apiVersion", "").startswith("kubevirt.io/")
        ),
        None,
    )


@kopf.index(*KUBEVIRT, "virtualmachineinstancemigrations", labels=OWNED)
async def vm_migrations(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[VM_LABEL]): kept.fields(body, "spec", "status")}


@kopf.index(*CDI, "datavolumes", labels=CREATED_BY_VM)
async def vm_data_volumes(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): kept.fields(body, "status")}


@kopf.on.event(*KUBEVIRT, "virtualmachineinstancemigrations", labels=OWNED, id="vm-migration-changed")
async def vm_migration_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    memo.vm_controller.enqueue((namespace, labels[VM_LABEL]), indexes_from(kwargs))


@kopf.on.event(*CDI, "datavolumes", labels=CREATED_BY_VM, id="vm-data-volume-changed")
async def vm_data_volume_changed(namespace: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    if (vm := _owning_vm(body)) is not None:
        memo.vm_controller.enqueue((namespace, vm), indexes_from(kwargs))
