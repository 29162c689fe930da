"""The ReinstallPending condition: does the root disk come from spec.source, and if not, why (pure)."""

from __future__ import annotations

from ..api.conditions import Condition, ConditionStatus
from ..builders.rootdisk import UP_TO_DATE, RootDiskPlan

REINSTALL_PENDING = "ReinstallPending"


def reinstall_pending(plan: RootDiskPlan, generation: int, now: str) -> Condition:
    """True while spec.source (or a reinstall request) is not what the root disk is made from."""
    return Condition(
        type=REINSTALL_PENDING,
        status=ConditionStatus.FALSE if plan.pending_reason == UP_TO_DATE else ConditionStatus.TRUE,
        reason=plan.pending_reason,
        message=plan.pending_message,
        observedGeneration=generation,
        lastTransitionTime=now,
    )
