"""The Migrating condition and lastMigratedAt, from the request and what KubeVirt reports (pure).

The VMIM of the current request is the record: while it runs the VM is `Migrating`; when it
ends the condition says how. A target launcher pod the scheduler cannot place keeps the VM
`Migrating` with the scheduler's words, until KubeVirt gives up (its unschedulable timeout,
5 minutes by default) and fails the migration; the VM keeps running where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.conditions import Condition, ConditionStatus
from ..builders.migration import FINAL_PHASES, Refusal, phase
from ..objects import condition_of

MIGRATING = "Migrating"


@dataclass(frozen=True)
class MigrationObserved:
    """What the controller saw of the VM's current migration request."""

    requested_at: datetime
    vmim: dict | None = None  # the VMIM of this request, once created
    refusal: Refusal | None = None  # why no VMIM is created for it
    waiting_for: str | None = None  # an earlier migration of the VM still in flight
    target_unschedulable: str | None = None  # the scheduler's message for the target launcher pod
    done_before: bool = False  # status.lastMigratedAt already records this request


def migration_running(observed: MigrationObserved | None) -> bool:
    return observed is not None and observed.vmim is not None and phase(observed.vmim) not in FINAL_PHASES


def migrated(observed: MigrationObserved | None) -> bool:
    return observed is not None and (observed.done_before or phase(observed.vmim) == "Succeeded")


def migrating_condition(observed: MigrationObserved, generation: int, now: str) -> Condition:
    status, reason, message = _condition(observed)
    return Condition(
        type=MIGRATING,
        status=status,
        reason=reason,
        message=message,
        observedGeneration=generation,
        lastTransitionTime=now,
    )


def _condition(observed: MigrationObserved) -> tuple[ConditionStatus, str, str]:
    vmim = observed.vmim
    name = (vmim or {}).get("metadata", {}).get("name", "")
    if migrated(observed):
        state = ((vmim or {}).get("status") or {}).get("migrationState") or {}
        where = f" from {state['sourceNode']} to {state['targetNode']}" if state.get("targetNode") else ""
        return ConditionStatus.FALSE, "Migrated", f"live-migrated{where} (VirtualMachineInstanceMigration {name})"
    if observed.refusal is not None:
        return ConditionStatus.FALSE, observed.refusal.reason, f"not migrated: {observed.refusal.message}"
    if vmim is None:
        if observed.waiting_for:
            return (
                ConditionStatus.TRUE,
                "WaitingForMigration",
                f"waits for the earlier migration {observed.waiting_for} to end",
            )
        return ConditionStatus.TRUE, "Pending", "creating the VirtualMachineInstanceMigration"
    current = phase(vmim) or "Pending"
    if current == "Failed":
        failure = condition_of(vmim, "Failure") or {}
        why = failure.get("message") or ((vmim.get("status") or {}).get("migrationState") or {}).get("failureReason")
        return (
            ConditionStatus.FALSE,
            failure.get("reason") or "MigrationFailed",
            f"the migration failed ({why or 'see VirtualMachineInstanceMigration ' + name}); the VM runs where "
            "it was: set a new spec.migration.requestedAt to try again",
        )
    if observed.target_unschedulable:
        return (
            ConditionStatus.TRUE,
            "InsufficientCapacity",
            f"no host can take the VM: {observed.target_unschedulable}; it keeps running where it is, and "
            "KubeVirt fails the migration if no host frees up in time (VirtualMachineInstanceMigration "
            f"{name})",
        )
    return ConditionStatus.TRUE, current, f"migration {name} is {current}"
