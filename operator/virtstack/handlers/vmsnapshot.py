"""kopf wiring for VMSnapshot: the snapshots (by VM), their KubeVirt snapshots and restores, indexed.

Every event queues the VM's key: the snapshot controller decides a VM's snapshots together, and the
VM controller reports their count and the current one (and holds the VM halted while a revert runs).
"""

from __future__ import annotations

from typing import Any

import kopf

from ..api.crd import GROUP, VERSION
from ..builders.labels import VM_LABEL
from ..builders.snapshot import RESTORES, SNAPSHOT_LABEL, SNAPSHOTS
from ..controllers.vmsnapshot import PLURAL, SnapshotIndexes
from . import kept
from .virtualmachine import KUBEVIRT, OWNED, indexes_from

SNAPSHOT_API = ("snapshot.kubevirt.io", "v1beta1")
BACKING = {SNAPSHOT_LABEL: kopf.PRESENT, VM_LABEL: kopf.PRESENT}


@kopf.index(GROUP, VERSION, PLURAL)
async def vm_snapshots(namespace: str, body: kopf.Body, **_: Any) -> dict:
    """By the VM they are of."""
    return {(namespace, (body.get("spec") or {}).get("virtualMachine")): kept.whole(body)}


@kopf.index(*SNAPSHOT_API, SNAPSHOTS, labels=BACKING)
async def kubevirt_snapshots(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): kept.fields(body, "status")}


@kopf.index(*SNAPSHOT_API, RESTORES, labels=BACKING)
async def kubevirt_restores(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[SNAPSHOT_LABEL]): kept.fields(body, "status")}


def snapshot_indexes_from(kwargs: dict) -> SnapshotIndexes:
    return SnapshotIndexes(
        snapshots=kwargs["vm_snapshots"],
        kubevirt_snapshots=kwargs["kubevirt_snapshots"],
        restores=kwargs["kubevirt_restores"],
        vms=kwargs["virtstack_vms"],
        kubevirt_vms=kwargs["kubevirt_vms"],
        vmis=kwargs["kubevirt_vmis"],
    )


def _enqueue(key: tuple[str, str], memo: kopf.Memo, kwargs: dict) -> None:
    memo.snapshot_controller.enqueue(key, snapshot_indexes_from(kwargs))
    memo.vm_controller.enqueue(key, indexes_from(kwargs))


@kopf.on.event(GROUP, VERSION, PLURAL, id="vmsnapshot-changed")
async def vm_snapshot_changed(namespace: str, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, spec.get("virtualMachine")), memo, kwargs)


@kopf.on.event(*SNAPSHOT_API, SNAPSHOTS, labels=BACKING, id="kubevirt-snapshot-changed")
async def kubevirt_snapshot_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)


@kopf.on.event(*SNAPSHOT_API, RESTORES, labels=BACKING, id="kubevirt-restore-changed")
async def kubevirt_restore_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)


def _vm_changed(key: tuple[str, str], memo: kopf.Memo, kwargs: dict) -> None:
    """A VM with snapshots changed: its size (memory snapshots), migration, power (a revert), or it is gone."""
    if kwargs["vm_snapshots"].get(key):
        memo.snapshot_controller.enqueue(key, snapshot_indexes_from(kwargs))


@kopf.on.event(GROUP, VERSION, "virtualmachines", id="virtstack-vm-changed-for-snapshots")
async def virtstack_vm_changed(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    _vm_changed((namespace, name), memo, kwargs)


@kopf.on.event(*KUBEVIRT, "virtualmachines", labels=OWNED, id="kubevirt-vm-changed-for-snapshots")
async def kubevirt_vm_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _vm_changed((namespace, labels[VM_LABEL]), memo, kwargs)


@kopf.on.event(*KUBEVIRT, "virtualmachineinstances", labels=OWNED, id="kubevirt-vmi-changed-for-snapshots")
async def kubevirt_vmi_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _vm_changed((namespace, labels[VM_LABEL]), memo, kwargs)
