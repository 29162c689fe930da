"""virtstack.io/v1alpha1 VirtualMachine: a CloudStack VM, declared; reconciled onto a KubeVirt VM."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .conditions import Condition


class PowerState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"


class VMState(StrEnum):
    """The VM's lifecycle in CloudStack's words."""

    CREATING = "Creating"
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MIGRATING = "Migrating"
    DOWN = "Down"
    ERROR = "Error"
    DESTROYING = "Destroying"


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: int = Field(default=1, ge=1, le=64, description="Virtual CPUs (KubeVirt sockets).")
    memory: str = Field(
        default="1Gi",
        pattern=r"^[0-9]+(Mi|Gi)$",
        description="Guest memory, in Mi or Gi, e.g. 2Gi.",
    )


class TemplateSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        min_length=1, description="A container-disk image holding the root disk, e.g. quay.io/containerdisks/fedora:41."
    )


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: TemplateSource = Field(description="Boot from a template: a disk image.")


class VirtualMachineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: PowerState = Field(
        default=PowerState.RUNNING,
        description="Running or Stopped. Stopped at creation creates the VM without starting it.",
    )
    resources: Resources = Field(
        default_factory=Resources, description="CPU and memory (CloudStack's service offering)."
    )
    source: Source = Field(description="Where the root disk comes from.")


class VirtualMachineStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: VMState | None = Field(default=None, description="The lifecycle state in CloudStack's terms.")
    host: str | None = Field(default=None, description="The node the VM runs on.")
    ipAddresses: list[str] = Field(default_factory=list, description="The VM's IP addresses.")
    observedGeneration: int | None = Field(default=None, description="The .metadata.generation last reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready and the aspects it is made of.")


class VirtualMachine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: VirtualMachineSpec
    status: VirtualMachineStatus = Field(default_factory=VirtualMachineStatus)
