"""Live migration: the KubeVirt VirtualMachineInstanceMigration a request becomes, and why one is refused (pure).

One request (`spec.migration.requestedAt`) is one VMIM with a name derived from it, so a repeated
reconcile, a crash after the create or a stale cache can never start a second migration for it.
A request the VM cannot carry out is refused before anything is created, with KubeVirt's reason;
it is not remembered: it stands, and is carried out once the cause is gone (a stopped VM that is
started), unless the administrator removes or replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.virtualmachine import VirtualMachineSpec
from ..objects import condition_of
from .labels import MANAGED_BY, VM_LABEL
from .owner import owner_reference

HOSTNAME_LABEL = "kubernetes.io/hostname"
REQUEST_ANNOTATION = "virtstack.io/migration-requested-at"
# KubeVirt's label on a migration's target launcher pod.
MIGRATION_JOB_LABEL = "kubevirt.io/migrationJobUID"
FINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Refusal:
    """Why a migration is not started: KubeVirt's reason word and a message saying what to do."""

    reason: str
    message: str


def migration_request(spec: VirtualMachineSpec) -> str | None:
    return spec.migration.requestedAt.strftime("%Y-%m-%dT%H:%M:%SZ") if spec.migration else None


def migration_name(vm_name: str, requested: str) -> str:
    """Deterministic: the request's time, to the second, in the name (e.g. web-migration-20261125120000)."""
    return f"{vm_name}-migration-{''.join(c for c in requested if c.isdigit())}"


def build_migration(vm_name: str, namespace: str, uid: str, spec: VirtualMachineSpec) -> dict:
    """The VMIM for the VM's current request, owned by our VM so garbage collection removes it with it."""
    requested = migration_request(spec)
    assert requested is not None and spec.migration is not None
    vmim_spec: dict = {"vmiName": vm_name}
    if spec.migration.host:
        vmim_spec["addedNodeSelector"] = {HOSTNAME_LABEL: spec.migration.host}
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {
            "name": migration_name(vm_name, requested),
            "namespace": namespace,
            "labels": {VM_LABEL: vm_name, **MANAGED_BY},
            "annotations": {REQUEST_ANNOTATION: requested},
            "ownerReferences": [owner_reference(vm_name, uid)],
        },
        "spec": vmim_spec,
    }


def phase(vmim: dict | None) -> str | None:
    return ((vmim or {}).get("status") or {}).get("phase")


def in_flight(vmim: dict) -> bool:
    return phase(vmim) not in FINAL_PHASES


def refusal(spec: VirtualMachineSpec, vmi: dict | None) -> Refusal | None:
    """Why KubeVirt would refuse to migrate this VM now (its admission webhook's reasons), or None.

    GPU VMs are refused up front, even while stopped: CloudStack never live-migrates a VM with a
    GPU, and KubeVirt refuses host devices (HostDeviceNotLiveMigratable).
    """
    if spec.gpu is not None:
        return Refusal(
            "GPUNotMigratable",
            f"a VM with a GPU (spec.gpu, GPUProfile {spec.gpu.profile}) is never live-migrated, as in "
            "CloudStack (KubeVirt: HostDeviceNotLiveMigratable): stop it and start it elsewhere, or remove "
            "spec.migration",
        )
    status = (vmi or {}).get("status") or {}
    if vmi is None or vmi["metadata"].get("deletionTimestamp") or status.get("phase") != "Running":
        return Refusal(
            "VMINotRunning",
            "Cannot migrate VMI which is not running (KubeVirt): the VM is not running; the request is "
            "carried out once it runs, or remove spec.migration",
        )
    migratable = condition_of(vmi, "LiveMigratable")
    if migratable is not None and migratable.get("status") == "False":
        reason = migratable.get("reason") or "NotLiveMigratable"
        return Refusal(
            reason,
            f"Cannot migrate VMI, Reason: {reason}, Message: {migratable.get('message', '')} (KubeVirt)"
            + (
                "; the root disk must be on shared (ReadWriteMany) storage"
                if reason == "DisksNotLiveMigratable"
                else ""
            ),
        )
    host = spec.migration.host if spec.migration else None
    pinned = spec.placement.host if spec.placement else None
    # KubeVirt keeps the VM's own nodeSelector on the target pod: a pinned VM can only go to its pin.
    if pinned and (status.get("nodeName") == pinned or (host and host != pinned)):
        return Refusal(
            "PinnedToHost",
            f"the VM is pinned to {pinned} (spec.placement.host), which the migration target must also be: "
            "change the pin to the new host and migrate to it, or remove spec.migration",
        )
    if host and status.get("nodeName") == host:
        return Refusal(
            "AlreadyOnHost",
            f"the VM already runs on {host} (spec.migration.host): name another host, or remove spec.migration",
        )
    return None


def target_unschedulable(pod: dict | None) -> str | None:
    """The scheduler's message when a migration's target launcher pod cannot be placed."""
    scheduled = condition_of(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "False":
        return None
    return scheduled.get("message") or "no host can take the VM"
