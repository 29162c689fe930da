"""Types every kind shares, and the helpers that put CEL rules and defaults into the generated schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .conditions import Condition

RFC1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
RFC1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY_GIB_MIB = r"^[0-9]+(Mi|Gi|Ti)$"
DURATION = r"^([0-9]+(s|m|h))+$"


def rule(expression: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One x-kubernetes-validations entry: the message must name the field and say the fix."""
    entry = {"rule": expression, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


NAME_SET = {"x-kubernetes-list-type": "set"}


def rules(*entries: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(entries)}


def exactly_one(fields: list[str], where: str) -> dict[str, str]:
    checks = ", ".join(f"has(self.{name})" for name in fields)
    names = ", ".join(fields[:-1]) + f" or {fields[-1]}"
    return rule(f"[{checks}].filter(x, x).size() == 1", f"{where} needs exactly one of {names}")


def immutable(field: str, where: str, fix: str) -> dict[str, str]:
    """A transition rule on the parent object, so it also catches setting or removing the field."""
    return rule(
        f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"{where}.{field} is immutable: {fix}",
    )


class Spec(BaseModel):
    """Specs refuse unknown fields in the models, as strict validation does in the API server."""

    model_config = ConfigDict(extra="forbid")


class LocalObjectReference(Spec):
    name: str = Field(max_length=253, description="The name of an object in the same namespace.")


class Status(Spec):
    observedGeneration: int | None = Field(
        default=None, description="The .metadata.generation the status was computed for."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="The object's state as Kubernetes conditions; `Ready` summarises them.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Resource(BaseModel):
    """The envelope of every kind: apiVersion, kind, metadata as the API server has them."""

    model_config = ConfigDict(extra="forbid")

    apiVersion: str | None = None
    kind: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
