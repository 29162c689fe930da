"""virtstack.io/v1alpha1 VMSnapshot: a CloudStack VM snapshot, backed by a KubeVirt VirtualMachineSnapshot."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from .common import DURATION, Resource, Spec, Status, immutable, rules


class SnapshotPhase(StrEnum):
    PENDING = "Pending"
    CREATING = "Creating"
    READY = "Ready"
    REVERTING = "Reverting"
    FAILED = "Failed"
    DELETING = "Deleting"


class VMSnapshotSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": rules(
            immutable("virtualMachine", "spec", "create a new VMSnapshot of the other VM"),
            immutable("memory", "spec", "create a new VMSnapshot"),
            immutable("quiesce", "spec", "create a new VMSnapshot"),
        )
    }

    virtualMachine: str = Field(max_length=253, description="The VirtualMachine (same namespace) to snapshot.")
    description: str | None = Field(default=None, max_length=1024, description="What the snapshot is for.")
    memory: bool = Field(
        default=False,
        description="Also keep CPU and memory state. KubeVirt cannot: the snapshot then says so in a condition.",
    )
    quiesce: bool = Field(
        default=False, description="Freeze the guest's file systems while taking it (needs the guest agent)."
    )
    timeout: str | None = Field(
        default=None,
        max_length=16,
        pattern=DURATION,
        description="Fail the snapshot if it is not ready in time, e.g. 30m; default: the operator setting.",
    )
    revertRequestedAt: AwareDatetime | None = Field(
        default=None, description="A new time reverts the VM to this snapshot (stopping and restarting it if needed)."
    )


class VMSnapshotStatus(Status):
    phase: SnapshotPhase | None = Field(default=None, description="Where the snapshot is in its life.")
    readyToUse: bool | None = Field(default=None, description="True once the VM can be reverted to it.")
    parent: str | None = Field(default=None, description="The VM's snapshot before this one: the chain.")
    ancestors: list[str] = Field(
        default_factory=list,
        description="The parent, its parent and so on: when one of them is deleted, the next becomes the parent.",
    )
    current: bool | None = Field(default=None, description="True for the VM's current snapshot.")
    size: str | None = Field(default=None, description="The space its volume snapshots take.")
    creationTime: AwareDatetime | None = Field(default=None, description="When it was taken.")
    lastRevertedAt: AwareDatetime | None = Field(default=None, description="The revertRequestedAt last carried out.")


class VMSnapshot(Resource):
    spec: VMSnapshotSpec
    status: VMSnapshotStatus | None = None
