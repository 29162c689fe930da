"""Whether a live resize reached the guest, and why not when it did not (pure).

With dynamicScaling KubeVirt hotplugs CPU and memory by a live migration of its own (the workload
updater's `kubevirt-workload-update-*` VirtualMachineInstanceMigration): the guest gets the new size
on the target host. When no host can take the bigger launcher pod, that migration fails and the VM
keeps running as it was; the `Resized` condition says so, with the scheduler's reason.
"""

from __future__ import annotations

from ..api.conditions import Condition, ConditionStatus
from ..api.virtualmachine import VirtualMachineSpec
from ..builders.quantity import bytes_of
from ..objects import condition_of

RESIZED = "Resized"
UNSCHEDULABLE_TARGET = "TargetPodUnschedulable"


def guest_size(vmi: dict) -> tuple[int, str] | None:
    """The vCPUs (sockets) and memory the running guest has now, as virt-handler reports them."""
    status = vmi.get("status") or {}
    sockets = (status.get("currentCPUTopology") or {}).get("sockets")
    memory = (status.get("memory") or {}).get("guestCurrent")
    return (sockets, memory) if sockets and memory else None


def _latest(migrations: list[dict]) -> dict | None:
    return max(migrations, key=lambda m: m["metadata"].get("creationTimestamp", ""), default=None)


def resize_condition(
    spec: VirtualMachineSpec, vmi: dict | None, workload_updates: list[dict], generation: int, now: str
) -> Condition | None:
    """`Resized` for a running dynamicScaling VM; None otherwise (or while a restart is what applies the size)."""
    if not spec.dynamicScaling or vmi is None or vmi["metadata"].get("deletionTimestamp"):
        return None
    if (vmi.get("status") or {}).get("phase") != "Running" or (have := guest_size(vmi)) is None:
        return None
    want = (spec.resources.cpu, spec.resources.memory)
    wanted = f"{want[0]} vCPUs and {want[1]}"
    if have[0] == want[0] and bytes_of(have[1]) == bytes_of(want[1]):
        status, reason, message = ConditionStatus.TRUE, "Applied", f"the guest runs with {wanted}"
    elif (latest := _latest(workload_updates)) is not None and (latest.get("status") or {}).get("phase") == "Failed":
        failure = condition_of(latest, "Failure") or {}
        status = ConditionStatus.FALSE
        reason = "InsufficientCapacity" if failure.get("reason") == UNSCHEDULABLE_TARGET else "MigrationFailed"
        cause = failure.get("message") or "the live migration failed"
        host = (vmi.get("status") or {}).get("nodeName")
        message = (
            f"not resized: no host could take the VM with {wanted} ({cause}); it keeps running as it was, "
            f"with {have[0]} vCPUs and {have[1]} on {host}. Set spec.resources back, or free room on a host; "
            "a restart (spec.rebootRequestedAt) starts it with the new size only where a host has room for it"
        )
        if reason == "MigrationFailed":
            message = (
                f"not resized: the live migration that hotplugs {wanted} failed ({cause}); it keeps running as it was"
            )
    else:
        status, reason = ConditionStatus.FALSE, "InProgress"
        message = f"hotplugging {wanted} (the guest has {have[0]} vCPUs and {have[1]}) through a live migration"
    return Condition(
        type=RESIZED,
        status=status,
        reason=reason,
        message=message,
        observedGeneration=generation,
        lastTransitionTime=now,
    )
