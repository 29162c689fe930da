"""Kubernetes-convention conditions: the status API that kstatus, `kubectl wait`, Argo CD and Flux read."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(BaseModel):
    """One aspect of an object's state, as in metav1.Condition."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="The aspect this condition reports, in CamelCase, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase word saying why, for programs.")
    message: str = Field(default="", description="What happened and what to do, for people.")
    observedGeneration: int = Field(default=0, description="The .metadata.generation this condition was computed for.")
    lastTransitionTime: str = Field(
        description="When status last changed (RFC 3339).", json_schema_extra={"format": "date-time"}
    )


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition_in(conditions: list[Condition], kind: str) -> Condition | None:
    """The condition of this type in one of our statuses, if any."""
    return next((condition for condition in conditions if condition.type == kind), None)


def merge_conditions(previous: list[Condition], current: list[Condition]) -> list[Condition]:
    """Keep lastTransitionTime from the previous condition of a type whose status did not flip."""
    before = {condition.type: condition for condition in previous}
    merged = []
    for condition in current:
        old = before.get(condition.type)
        if old is not None and old.status == condition.status:
            condition = condition.model_copy(update={"lastTransitionTime": old.lastTransitionTime})
        merged.append(condition)
    return merged
