"""virtstack.io/v1alpha1 GPUProfile (cluster-scoped): a kind of GPU or vGPU the hosts' device plugins offer."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import Resource, Spec, Status, immutable, rule, rules


class GPUType(StrEnum):
    PASSTHROUGH = "Passthrough"
    VGPU = "VGPU"


class GPUProfileSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": rules(immutable("resourceName", "spec", "create a new GPUProfile for another resource"))
    }

    type: GPUType = Field(description="Passthrough (a whole GPU) or VGPU (a slice of one).")
    resourceName: str = Field(
        max_length=253,
        description="The extended resource the device plugin advertises on nodes, e.g. nvidia.com/GRID_K240Q.",
        json_schema_extra=rules(
            rule(
                "self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')",
                "spec.resourceName must be an extended resource name: a domain, '/', and a name, "
                "e.g. nvidia.com/GRID_K240Q",
            )
        ),
    )
    model: str | None = Field(default=None, max_length=128, description="The physical GPU, e.g. GRID K2.")
    vgpuType: str | None = Field(default=None, max_length=64, description="The vGPU type, e.g. GRID K240Q.")
    framebufferMiB: int | None = Field(default=None, ge=1, description="Video memory per (v)GPU, in MiB.")
    maxHeads: int | None = Field(default=None, ge=1, description="Displays per (v)GPU.")
    maxResolution: str | None = Field(
        default=None, max_length=16, pattern=r"^[0-9]+x[0-9]+$", description="The largest display, e.g. 2560x1600."
    )
    vgpusPerGPU: int | None = Field(default=None, ge=1, description="vGPUs one physical GPU holds.")
    description: str | None = Field(default=None, max_length=1024, description="What it is for.")


class NodeCapacity(Spec):
    name: str = Field(description="The node.")
    capacity: int = Field(description="Units the node offers.")
    allocated: int = Field(description="Units taken by VMs.")


class GPUProfileStatus(Status):
    nodes: list[NodeCapacity] = Field(default_factory=list, description="Capacity per node that offers the resource.")
    capacity: int | None = Field(default=None, description="Units offered by all nodes.")
    allocated: int | None = Field(default=None, description="Units taken by VMs.")
    available: int | None = Field(default=None, description="Units free.")


class GPUProfile(Resource):
    spec: GPUProfileSpec
    status: GPUProfileStatus | None = None
