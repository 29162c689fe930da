"""The fake hosts of a testbed: a small YAML file, strictly validated, turned into Node objects."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import TestbedError

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
ZONE_LABEL = "topology.kubernetes.io/zone"
POD_CIDR_BASE = ipaddress.ip_network("10.244.0.0/16")


class HostSpec(BaseModel):
    """One fake host: a Node run by its own kwok process, so a test can fail it alone."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    zone: str = "zone-a"
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels, e.g. host tags.")
    cpu: str = "32"
    memory: str = "128Gi"
    pods: int = Field(default=110, ge=1)
    ephemeral_storage: str = Field(default="200Gi", alias="ephemeralStorage")
    extended_resources: dict[str, str] = Field(
        default_factory=dict, alias="extendedResources", description="e.g. nvidia.com/GRID_K240Q: '2'"
    )


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: list[HostSpec] = Field(min_length=1)

    @field_validator("nodes")
    @classmethod
    def _unique_names(cls, nodes: list[HostSpec]) -> list[HostSpec]:
        names = [node.name for node in nodes]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate node names: {', '.join(duplicates)}")
        return nodes


def load_topology(path: Path) -> Topology:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TestbedError(f"topology file {path} does not exist", "pass an existing file with --topology") from None
    except yaml.YAMLError as error:
        raise TestbedError(
            f"topology file {path} is not valid YAML: {error}".replace("\n", " "), "fix the YAML syntax"
        ) from None
    try:
        return Topology.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise TestbedError(
            f"topology file {path}: {where}: {first['msg']}",
            f"under nodes[] use only the fields {', '.join(HostSpec.model_json_schema(by_alias=True)['properties'])}",
        ) from None


def pod_cidr(index: int) -> str:
    """A distinct /24 per node so pod IPs never collide across kwok processes."""
    return str(list(POD_CIDR_BASE.subnets(new_prefix=24))[index])


def node_ip(index: int) -> str:
    return f"10.240.0.{index + 10}"


def node_manifest(host: HostSpec, index: int) -> dict:
    """A Node as a kubelet would register it, with capacity kwok keeps as given."""
    capacity = {
        "cpu": host.cpu,
        "memory": host.memory,
        "pods": str(host.pods),
        "ephemeral-storage": host.ephemeral_storage,
        **host.extended_resources,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": host.name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": host.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                ZONE_LABEL: host.zone,
                **host.labels,
            },
        },
        "spec": {"podCIDR": pod_cidr(index), "podCIDRs": [pod_cidr(index)]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": node_ip(index)}],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "osImage": "",
                "kernelVersion": "",
                "containerRuntimeVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }
