"""The KubeVirt objects a VMSnapshot owns, and the owner reference that ties it to its VM (pure).

A VMSnapshot is carried out by a KubeVirt VirtualMachineSnapshot of the same name (KubeVirt keeps
the disks through VolumeSnapshots) and reverted through a VirtualMachineRestore named after the
request, so a rerun finds what an earlier run created.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from ..api.crd import GROUP, VERSION
from ..api.virtualmachine import Resources
from .labels import MANAGED_BY, VM_LABEL

SNAPSHOT_API = "snapshot.kubevirt.io/v1beta1"
SNAPSHOTS = "virtualmachinesnapshots"
RESTORES = "virtualmachinerestores"
SNAPSHOT_LABEL = "virtstack.io/snapshot"
# The VM's cpu/memory when the snapshot was taken: CloudStack drops memory snapshots after a resize.
RESOURCES_ANNOTATION = "virtstack.io/resources"


def resources_stamp(resources: Resources) -> str:
    return f"cpu={resources.cpu},memory={resources.memory}"


def _owned_by_snapshot(name: str, uid: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VMSnapshot",
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _labels(vm_name: str, snapshot_name: str) -> dict:
    return {VM_LABEL: vm_name, SNAPSHOT_LABEL: snapshot_name, **MANAGED_BY}


def build_kubevirt_snapshot(
    name: str, namespace: str, uid: str, vm_name: str, timeout: str, resources: Resources
) -> dict:
    """KubeVirt fails it at `failureDeadline` (CloudStack's vmsnapshot.create.wait); deleting it deletes its content."""
    return {
        "apiVersion": SNAPSHOT_API,
        "kind": "VirtualMachineSnapshot",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": _labels(vm_name, name),
            "annotations": {RESOURCES_ANNOTATION: resources_stamp(resources)},
            "ownerReferences": [_owned_by_snapshot(name, uid)],
        },
        "spec": {
            "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm_name},
            "deletionPolicy": "Delete",
            "failureDeadline": timeout,
        },
    }


def restore_name(snapshot_name: str, requested_at: datetime) -> str:
    """One name per revert request: a new request is a new restore; a rerun finds the one it made."""
    digest = hashlib.sha256(requested_at.isoformat().encode()).hexdigest()[:8]
    return f"{snapshot_name[:230]}-revert-{digest}"


def build_restore(snapshot_name: str, namespace: str, uid: str, vm_name: str, requested_at: datetime) -> dict:
    """StopTarget: KubeVirt stops a running VM itself (it cannot restore one online); the VM controller
    holds the VM halted meanwhile and starts it again afterwards if its spec asks for Running.

    InPlace: the restored disks keep their names (KubeVirt's default gives them new ones and repoints
    the VM), so the KubeVirt VM the operator applies afterwards still names the restored disks."""
    return {
        "apiVersion": SNAPSHOT_API,
        "kind": "VirtualMachineRestore",
        "metadata": {
            "name": restore_name(snapshot_name, requested_at),
            "namespace": namespace,
            "labels": _labels(vm_name, snapshot_name),
            "ownerReferences": [_owned_by_snapshot(snapshot_name, uid)],
        },
        "spec": {
            "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm_name},
            "virtualMachineSnapshotName": snapshot_name,
            "targetReadinessPolicy": "StopTarget",
            "volumeRestorePolicy": "InPlace",
        },
    }


def vm_owner(vm: dict) -> dict:
    """Not a controller reference: the VM does not manage the snapshot, it only takes it along when deleted."""
    meta = vm["metadata"]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualMachine", "name": meta["name"], "uid": meta["uid"]}


def owned_by_vm(snapshot: dict, vm: dict) -> bool:
    uid = vm["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in snapshot["metadata"].get("ownerReferences") or [])


def snapshot_owner_patch(snapshot: dict, vm: dict) -> dict:
    """The server-side apply that adds only the VM's owner reference to the user's VMSnapshot's metadata
    (never its spec): garbage collection then deletes the snapshot with the VM, even if the operator is down."""
    meta = snapshot["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VMSnapshot",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "ownerReferences": [vm_owner(vm)]},
    }
