"""Carry out a VM's live-migration request: create its one VMIM, or say why not; report what KubeVirt does with it."""

from __future__ import annotations

from datetime import datetime

from ..api.virtualmachine import VirtualMachineSpec
from ..builders.migration import (
    MIGRATION_JOB_LABEL,
    build_migration,
    in_flight,
    migration_name,
    migration_request,
    phase,
    refusal,
    target_unschedulable,
)
from ..kube import Kube
from ..status.migration import MigrationObserved
from .base import Key

MIGRATIONS = "virtualmachineinstancemigrations"
KUBEVIRT = "kubevirt.io/v1"


async def carry_out_migration(
    kube: Kube, migrations: list[dict], key: Key, uid: str, spec: VirtualMachineSpec, vmi: dict | None, last: str | None
) -> MigrationObserved | None:
    """`migrations`: the VM's VMIMs as indexed; `last`: status.lastMigratedAt. None without a request.

    Only the current request's VMIM is kept once the others have ended (they are history).
    """
    namespace, name = key
    requested = migration_request(spec)
    current = migration_name(name, requested) if requested else None
    for old in migrations:
        if old["metadata"]["name"] != current and not in_flight(old):
            await kube.delete_custom(KUBEVIRT, MIGRATIONS, namespace, old["metadata"]["name"])
    if requested is None:
        return None
    vmim = next((m for m in migrations if m["metadata"]["name"] == current), None)
    done_before = last is not None and datetime.fromisoformat(last) == spec.migration.requestedAt  # any offset
    observed = MigrationObserved(requested_at=spec.migration.requestedAt, vmim=vmim, done_before=done_before)
    if vmim is None and not observed.done_before:
        if (refused := refusal(spec, vmi)) is not None:
            return MigrationObserved(requested_at=spec.migration.requestedAt, refusal=refused)
        if earlier := next((m["metadata"]["name"] for m in migrations if in_flight(m)), None):
            return MigrationObserved(requested_at=spec.migration.requestedAt, waiting_for=earlier)
        # Created once (its spec is immutable); a 409 means a create this cache has not seen yet.
        vmim = await kube.create_custom(build_migration(name, namespace, uid, spec), MIGRATIONS)
        return MigrationObserved(requested_at=spec.migration.requestedAt, vmim=vmim)
    if vmim is not None and phase(vmim) in (None, "Pending", "Scheduling"):
        pods = await kube.list_pods(namespace, f"{MIGRATION_JOB_LABEL}={vmim['metadata']['uid']}")
        return MigrationObserved(
            requested_at=spec.migration.requestedAt,
            vmim=vmim,
            target_unschedulable=target_unschedulable(next(iter(pods), None)),
        )
    return observed


def awaits_scheduling(observed: MigrationObserved | None) -> bool:
    """A target pod not placed yet: nothing KubeVirt writes would tell when the scheduler gives up, so look again."""
    return (
        observed is not None
        and observed.vmim is not None
        and phase(observed.vmim) in (None, "Pending", "Scheduling")
        and observed.target_unschedulable is None
    )
