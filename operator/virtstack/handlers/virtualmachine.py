"""kopf wiring for VirtualMachine: indexes hold the observed objects; every event only queues a key.

No handler here persists anything through kopf (no annotations, no finalizers): the reconcile
in controllers/virtualmachine.py is level-triggered and reads everything from the indexes.
"""

from __future__ import annotations

import copy
from typing import Any

import kopf

from ..api.crd import GROUP, VERSION
from ..builders.labels import VM_LABEL
from ..controllers.virtualmachine import Indexes

KUBEVIRT = ("kubevirt.io", "v1")
OWNED = {VM_LABEL: kopf.PRESENT}


def _snapshot(body: kopf.Body) -> dict:
    return copy.deepcopy(dict(body))


@kopf.index(GROUP, VERSION, "virtualmachines")
def virtstack_vms(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): _snapshot(body)}


@kopf.index(*KUBEVIRT, "virtualmachines", labels=OWNED)
def kubevirt_vms(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[VM_LABEL]): _snapshot(body)}


@kopf.index(*KUBEVIRT, "virtualmachineinstances", labels=OWNED)
def kubevirt_vmis(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {
        (namespace, labels[VM_LABEL]): {
            "metadata": dict(body["metadata"]),
            "status": copy.deepcopy(body.get("status", {})),
        }
    }


def _enqueue(key: tuple[str, str], memo: kopf.Memo, kwargs: dict) -> None:
    indexes = Indexes(vms=kwargs["virtstack_vms"], kubevirt_vms=kwargs["kubevirt_vms"], vmis=kwargs["kubevirt_vmis"])
    memo.vm_controller.enqueue(key, indexes)


@kopf.on.event(GROUP, VERSION, "virtualmachines", id="virtstack-vm-changed")
async def virtstack_vm_changed(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, name), memo, kwargs)


@kopf.on.event(*KUBEVIRT, "virtualmachines", labels=OWNED, id="kubevirt-vm-changed")
async def kubevirt_vm_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)


@kopf.on.event(*KUBEVIRT, "virtualmachineinstances", labels=OWNED, id="kubevirt-vmi-changed")
async def kubevirt_vmi_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)
