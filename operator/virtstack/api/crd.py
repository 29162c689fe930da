"""CustomResourceDefinitions generated from the pydantic models: the models are the one source of truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .affinitygroup import AffinityGroup
from .gpuprofile import GPUProfile
from .iso import ISO
from .sshkeypair import SSHKeyPair
from .virtualmachine import VirtualMachine
from .vmsnapshot import VMSnapshot

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
    "minProperties",
    "maxProperties",
    "format",
    "default",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
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
    singular: str = ""  # default: the kind in lower case; set when that name is taken by another API

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
READY = {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}


def column(name: str, json_path: str, kind: str = "string", priority: int = 0) -> dict:
    entry = {"name": name, "type": kind, "jsonPath": json_path}
    if priority:
        entry["priority"] = priority
    return entry


KINDS = [
    Kind(
        kind="VirtualMachine",
        plural="virtualmachines",
        short_names=["vsvm"],
        model=VirtualMachine,
        printer_columns=[
            column("State", ".status.state"),
            column("Host", ".status.host"),
            column("IP", ".status.ipAddresses[0]"),
            READY,
            AGE,
            column("Instance", ".status.instanceName", priority=1),
            column("Zone", ".status.zone", priority=1),
        ],
    ),
    Kind(
        kind="AffinityGroup",
        plural="affinitygroups",
        short_names=["ag"],
        model=AffinityGroup,
        printer_columns=[
            column("Type", ".spec.type"),
            column("Enforcement", ".spec.enforcement"),
            column("Members", ".status.memberCount", "integer"),
            READY,
            AGE,
        ],
    ),
    Kind(
        kind="VMSnapshot",
        # KubeVirt's VirtualMachineSnapshot has the short names vmsnapshot and vmsnapshots: ours
        # differ, so `kubectl get` never has to guess which API is meant.
        plural="vssnapshots",
        singular="vssnapshot",
        short_names=["vssnap"],
        model=VMSnapshot,
        printer_columns=[
            column("VM", ".spec.virtualMachine"),
            column("Phase", ".status.phase"),
            column("Ready", ".status.readyToUse", "boolean"),
            column("Current", ".status.current", "boolean"),
            AGE,
        ],
    ),
    Kind(
        kind="ISO",
        plural="isos",
        short_names=["iso"],
        model=ISO,
        printer_columns=[
            column("Phase", ".status.phase"),
            column("Progress", ".status.progress"),
            column("Bootable", ".spec.bootable", "boolean"),
            column("Public", ".spec.public", "boolean"),
            AGE,
        ],
    ),
    Kind(
        kind="SSHKeyPair",
        plural="sshkeypairs",
        short_names=["sshkey"],
        model=SSHKeyPair,
        printer_columns=[
            column("Fingerprint", ".status.fingerprintSHA256"),
            column("Type", ".status.keyType"),
            READY,
            AGE,
        ],
    ),
    Kind(
        kind="GPUProfile",
        plural="gpuprofiles",
        short_names=["gpuprofile"],
        model=GPUProfile,
        namespaced=False,
        printer_columns=[
            column("Resource", ".spec.resourceName"),
            column("Type", ".spec.type"),
            column("Capacity", ".status.capacity", "integer"),
            column("Allocated", ".status.allocated", "integer"),
            column("Available", ".status.available", "integer"),
            AGE,
        ],
    ),
]


def crd_for(kind: Kind) -> dict:
    schema = openapi_schema(kind.model)
    envelope = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    schema["properties"] = envelope | {k: v for k, v in schema["properties"].items() if k not in envelope}
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
                "singular": kind.singular_name,
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
