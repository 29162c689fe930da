"""CustomResourceDefinitions generated from the pydantic models: the models are the one source of truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .virtualmachine import VirtualMachine

GROUP = "virtstack.io"
VERSION = "v1alpha1"
CATEGORY = "virtstack"

# JSON-schema keywords an OpenAPI v3 structural schema keeps as they are.
_KEPT = (
    "type",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "format",
    "default",
    "x-kubernetes-validations",
)


@dataclass(frozen=True)
class Kind:
    """A custom resource kind and how it looks to kubectl."""

    kind: str
    plural: str
    short_names: list[str]
    model: type[BaseModel]
    printer_columns: list[dict] = field(default_factory=list)
    namespaced: bool = True

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


KINDS = [
    Kind(
        kind="VirtualMachine",
        plural="virtualmachines",
        short_names=["vsvm"],
        model=VirtualMachine,
        printer_columns=[
            {"name": "State", "type": "string", "jsonPath": ".status.state"},
            {"name": "Host", "type": "string", "jsonPath": ".status.host"},
            {"name": "IP", "type": "string", "jsonPath": ".status.ipAddresses[0]"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    ),
]


def crd_for(kind: Kind) -> dict:
    schema = openapi_schema(kind.model)
    schema["properties"] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        **schema["properties"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": kind.short_names,
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.printer_columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def all_crds() -> list[dict]:
    return [crd_for(kind) for kind in KINDS]


def openapi_schema(model: type[BaseModel]) -> dict:
    """Pydantic's JSON schema, with references inlined and optionals unwrapped, made structural."""
    raw = model.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict:
    if "$ref" in node:
        target = _convert(defs[node["$ref"].split("/")[-1]], defs)
        return {**target, **{k: v for k, v in node.items() if k in _KEPT}}
    options = [option for option in node.get("anyOf", []) if option.get("type") != "null"]
    if options:
        if len(options) > 1:
            raise ValueError(f"a CRD schema cannot express a union of {options}")
        extra = {k: v for k, v in node.items() if k in _KEPT and v is not None}
        return {**_convert(options[0], defs), **extra}
    result = {k: v for k, v in node.items() if k in _KEPT}
    if "const" in node:
        result["enum"] = [node["const"]]
    if result.get("default") is None:
        result.pop("default", None)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        result.update(_convert_object(node, defs))
    elif kind == "array":
        result["items"] = _convert(node["items"], defs)
    elif kind is None and "enum" in node:
        result["type"] = "string"
    return result


def _convert_object(node: dict[str, Any], defs: dict[str, Any]) -> dict:
    """Properties stay strict; a free-form map (no properties) keeps unknown fields."""
    result: dict[str, Any] = {"type": "object"}
    if "properties" in node:
        result["properties"] = {name: _convert(child, defs) for name, child in node["properties"].items()}
    if node.get("required"):
        result["required"] = node["required"]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        result["additionalProperties"] = _convert(extra, defs)
    elif extra is not False and "properties" not in node:
        result["x-kubernetes-preserve-unknown-fields"] = True
    return result
