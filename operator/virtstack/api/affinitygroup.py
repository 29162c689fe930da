"""virtstack.io/v1alpha1 AffinityGroup: CloudStack's host (anti-)affinity, carried out by the kube-scheduler."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import Resource, Spec, Status, immutable, rule, rules


class AffinityType(StrEnum):
    HOST_ANTI_AFFINITY = "HostAntiAffinity"
    HOST_AFFINITY = "HostAffinity"


class Enforcement(StrEnum):
    REQUIRED = "Required"
    PREFERRED = "Preferred"


class Topology(StrEnum):
    HOST = "Host"
    ZONE = "Zone"


class AffinityGroupSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": rules(
            immutable("type", "spec", "create a new AffinityGroup and move the VMs to it"),
            immutable("topology", "spec", "create a new AffinityGroup and move the VMs to it"),
        )
    }

    type: AffinityType = Field(
        description="HostAntiAffinity: members on different hosts (CloudStack's type). HostAffinity: on one host."
    )
    enforcement: Enforcement = Field(
        default=Enforcement.REQUIRED,
        description="Required: a member that cannot follow the rule does not start. Preferred: it starts anyway, "
        "and the group reports the violation.",
    )
    topology: Topology = Field(default=Topology.HOST, description="What 'the same place' means: a Host or a Zone.")
    description: str | None = Field(default=None, max_length=1024, description="What the group is for.")


class AffinityGroupStatus(Status):
    members: list[str] = Field(default_factory=list, description="The VMs that list this group.")
    memberCount: int | None = Field(default=None, description="How many members.")
    hosts: list[str] = Field(default_factory=list, description="The hosts the members run on.")
    violations: list[str] = Field(default_factory=list, description="Where the members break the rule, and why.")


class AffinityGroup(Resource):
    # Members carry the label ag.virtstack.io/<name>: the name must fit a label name.
    model_config = Resource.model_config | {
        "json_schema_extra": rules(
            rule(
                "size(self.metadata.name) <= 63",
                "metadata.name of an AffinityGroup must be at most 63 characters: it becomes a label name",
            )
        )
    }

    spec: AffinityGroupSpec
    status: AffinityGroupStatus | None = None
