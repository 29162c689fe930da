"""kopf wiring for VirtualMachine: indexes hold the observed objects; every event only queues a key.

No handler here persists anything through kopf (no annotations, no finalizers): the reconcile
in controllers/virtualmachine.py is level-triggered and reads everything from the indexes.
Index functions are coroutines: kopf runs plain functions in a thread pool, a hop per watch event.
"""

from __future__ import annotations

from typing import Any

import kopf

from ..api.crd import GROUP, VERSION
from ..builders.labels import VM_LABEL
from ..controllers.base import one, vms_listing
from ..controllers.virtualmachine import Indexes
from ..objects import condition_of
from . import kept

KUBEVIRT = ("kubevirt.io", "v1")
OWNED = {VM_LABEL: kopf.PRESENT}
WORKLOAD_UPDATE = {"kubevirt.io/workloadUpdateMigration": kopf.PRESENT}


@kopf.index(GROUP, VERSION, "virtualmachines")
async def virtstack_vms(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): kept.whole(body)}


@kopf.index(*KUBEVIRT, "virtualmachines", labels=OWNED)
async def kubevirt_vms(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[VM_LABEL]): kept.whole(body)}


@kopf.index(*KUBEVIRT, "virtualmachineinstances", labels=OWNED)
async def kubevirt_vmis(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {
        (namespace, labels[VM_LABEL]): {
            "metadata": kept.metadata(body),
            "spec": {"accessCredentials": kept.compact(body.get("spec", {}).get("accessCredentials"))},
            "status": kept.compact(body.get("status", {})),
            "gpus": vmi_gpus(body),
        }
    }


def vmi_gpus(body: kopf.Body) -> list[str]:
    """The extended resources a VMI's GPUs take, one entry per GPU (what its launcher pod requests)."""
    devices = ((body.get("spec") or {}).get("domain") or {}).get("devices") or {}
    return [gpu["deviceName"] for gpu in devices.get("gpus") or []]


@kopf.index(*KUBEVIRT, "virtualmachineinstancemigrations", labels=WORKLOAD_UPDATE)
async def workload_updates(namespace: str, spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict:
    """KubeVirt's own migrations that hotplug CPU and memory, by the VMI (= our VM) they move."""
    return {(namespace, spec.get("vmiName")): kept.fields(body, "status")}


@kopf.index(GROUP, VERSION, "affinitygroups")
async def affinity_groups(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): kept.whole(body)}


@kopf.index(GROUP, VERSION, "gpuprofiles")
async def gpu_profiles(name: str, body: kopf.Body, **_: Any) -> dict:
    return {name: kept.whole(body)}


@kopf.index("", "v1", "services", labels=OWNED)
async def owned_services(namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, labels[VM_LABEL]): kept.whole(body)}


@kopf.index("", "v1", "secrets", labels=OWNED)
async def owned_secrets(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    """Only what the comparison needs: the Secret's data stays out of memory except as applied."""
    return {(namespace, name): kept.fields(body, "data")}


@kopf.index("", "v1", "nodes")
async def nodes(
    name: str, labels: kopf.Labels, spec: kopf.Spec, status: kopf.Status, body: kopf.Body, **_: Any
) -> dict:
    addresses = status.get("addresses") or []
    internal = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), None)
    ready = condition_of(body, "Ready") or {}
    healthy = ready.get("status") == "True"
    return {
        name: {
            "labels": dict(labels),
            "address": internal,
            "ready": healthy,
            "unschedulable": bool(spec.get("unschedulable")),
            "notReadySince": None if healthy else ready.get("lastTransitionTime"),
            "allocatable": dict(status.get("allocatable") or {}),
        }
    }


def indexes_from(kwargs: dict) -> Indexes:
    """The VM controller's view of kopf's indexes, from any handler's keyword arguments."""
    return Indexes(
        vms=kwargs["virtstack_vms"],
        kubevirt_vms=kwargs["kubevirt_vms"],
        vmis=kwargs["kubevirt_vmis"],
        services=kwargs["owned_services"],
        secrets=kwargs["owned_secrets"],
        nodes=kwargs["nodes"],
        groups=kwargs["affinity_groups"],
        gpu_profiles=kwargs["gpu_profiles"],
        keypairs=kwargs["keypairs"],
        snapshots=kwargs["vm_snapshots"],
        migrations=kwargs["vm_migrations"],
        data_volumes=kwargs["vm_data_volumes"],
        isos=kwargs["isos"],
        workload_updates=kwargs["workload_updates"],
    )


def _enqueue(key: tuple[str, str], memo: kopf.Memo, kwargs: dict) -> None:
    """The VM, and the AffinityGroups it lists (their members or hosts may have changed)."""
    indexes = indexes_from(kwargs)
    memo.vm_controller.enqueue(key, indexes)
    memo.vm_controller.capacity_changed(indexes)
    vm = one(indexes.vms, key)
    for group in (vm or {}).get("spec", {}).get("affinityGroups", []):
        memo.group_controller.enqueue((key[0], group), indexes)
    if gpu := (vm or {}).get("spec", {}).get("gpu"):
        memo.gpu_controller.enqueue(("", gpu["profile"]), indexes)


@kopf.on.event(GROUP, VERSION, "gpuprofiles", id="gpu-profile-changed")
async def gpu_profile_changed(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """The profile, and the VMs that use it (a VM waiting for a missing profile can now be created)."""
    indexes = indexes_from(kwargs)
    memo.gpu_controller.enqueue(("", name), indexes)
    for key, store in indexes.vms.items():
        if any(((vm.get("spec") or {}).get("gpu") or {}).get("profile") == name for vm in store):
            memo.vm_controller.enqueue(key, indexes)


@kopf.on.event(GROUP, VERSION, "affinitygroups", id="affinity-group-changed")
async def affinity_group_changed(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """The group and its members: a changed or deleted group changes their placement constraints."""
    indexes = indexes_from(kwargs)
    memo.group_controller.enqueue((namespace, name), indexes)
    for key in vms_listing(indexes.vms, namespace, "affinityGroups", name):
        memo.vm_controller.enqueue(key, indexes)


@kopf.on.event(GROUP, VERSION, "virtualmachines", id="virtstack-vm-changed")
async def virtstack_vm_changed(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, name), memo, kwargs)


@kopf.on.event(*KUBEVIRT, "virtualmachines", labels=OWNED, id="kubevirt-vm-changed")
async def kubevirt_vm_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)


@kopf.on.event(*KUBEVIRT, "virtualmachineinstances", labels=OWNED, id="kubevirt-vmi-changed")
async def kubevirt_vmi_changed(
    namespace: str, labels: kopf.Labels, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    """The VM; and the GPU profiles whose devices the VMI takes or gives back (also once it is deleted)."""
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)
    if gpus := vmi_gpus(body):
        memo.gpu_controller.devices_changed(set(gpus), indexes_from(kwargs))


@kopf.on.event(*KUBEVIRT, "virtualmachineinstancemigrations", labels=WORKLOAD_UPDATE, id="workload-update-changed")
async def workload_update_changed(namespace: str, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any) -> None:
    """A live resize moved on: the VM whose VMI it migrates reports it (a VMI not ours is ignored).

    A deletion found only by a listing (kopf_fixes.relist) carries no spec: the resync reports it.
    """
    if vmi := spec.get("vmiName"):
        memo.vm_controller.enqueue((namespace, vmi), indexes_from(kwargs))


@kopf.on.event("", "v1", "services", labels=OWNED, id="owned-service-changed")
async def owned_service_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)


@kopf.on.event("", "v1", "secrets", labels=OWNED, id="owned-secret-changed")
async def owned_secret_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **kwargs: Any) -> None:
    _enqueue((namespace, labels[VM_LABEL]), memo, kwargs)


@kopf.on.event("", "v1", "nodes", id="node-changed")
async def node_changed(name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """A host changed: its VMs may be Down now (or up again), GPU capacity may have moved."""
    indexes = indexes_from(kwargs)
    memo.vm_controller.node_changed(name, indexes)
    memo.vm_controller.capacity_changed(indexes)
    memo.gpu_controller.node_changed(name, indexes)
