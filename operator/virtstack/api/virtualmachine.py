"""virtstack.io/v1alpha1 VirtualMachine: a CloudStack VM, declared; reconciled onto a KubeVirt VM."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from .common import (
    NAME_SET,
    QUANTITY_GIB_MIB,
    RFC1123_LABEL,
    LocalObjectReference,
    Resource,
    Spec,
    Status,
    exactly_one,
    rule,
    rules,
)

# Node labels that are host tags: a prefix of their own, so a host tag cannot pin a host by name.
HOST_TAG_PREFIX = "virtstack.io/host-tag."
# CloudStack accepts 32 KiB of user-data after base64 encoding: 24 KiB of raw data.
USER_DATA_MAX_BYTES = 24576


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


class Allocation(StrEnum):
    SPREAD = "Spread"
    PACK = "Pack"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"


class Resources(Spec):
    cpu: int = Field(default=1, ge=1, le=64, description="Virtual CPUs (KubeVirt CPU sockets, so they can hotplug).")
    memory: str = Field(
        default="1Gi",
        max_length=16,
        pattern=QUANTITY_GIB_MIB,
        description="Guest memory in Mi, Gi or Ti, from 64Mi to 1Ti, e.g. 4Gi.",
        json_schema_extra=rules(
            rule(
                "quantity(self).compareTo(quantity('64Mi')) >= 0 && quantity(self).compareTo(quantity('1Ti')) <= 0",
                "spec.resources.memory must be between 64Mi and 1Ti, e.g. 4Gi",
            )
        ),
    )


class DataSourceReference(Spec):
    name: str = Field(max_length=253, description="The CDI DataSource's name.")
    namespace: str | None = Field(default=None, max_length=63, description="Its namespace; default: the VM's.")


class TemplateSource(Spec):
    """A template: a disk image the root disk is made from. Exactly one of its fields."""

    model_config = Spec.model_config | {
        "json_schema_extra": rules(exactly_one(["image", "url", "pvc", "dataSource"], "spec.source.template"))
    }

    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="A container-disk image holding the root disk, e.g. quay.io/containerdisks/fedora:41.",
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        description="An HTTP(S) URL of a disk image (qcow2, raw, iso), imported by CDI into the VM's root disk.",
        json_schema_extra=rules(
            rule(
                "isURL(self) && url(self).getScheme() in ['http', 'https']",
                "spec.source.template.url must be an http or https URL",
            )
        ),
    )
    pvc: LocalObjectReference | None = Field(
        default=None, description="An existing PersistentVolumeClaim, cloned into the VM's root disk."
    )
    dataSource: DataSourceReference | None = Field(
        default=None, description="A CDI DataSource (a golden image), cloned into the VM's root disk."
    )


class IsoReference(Spec):
    name: str = Field(max_length=253, description="The ISO's name.")
    namespace: str | None = Field(
        default=None, max_length=63, description="The ISO's namespace, for a public ISO of another; default: the VM's."
    )


class Source(Spec):
    model_config = Spec.model_config | {"json_schema_extra": rules(exactly_one(["template", "iso"], "spec.source"))}

    template: TemplateSource | None = Field(default=None, description="Boot from a template: a disk image.")
    iso: IsoReference | None = Field(
        default=None, description="Boot from a bootable ISO: the VM gets a blank root disk of rootDisk.size."
    )


class RootDisk(Spec):
    size: str | None = Field(
        default=None,
        max_length=16,
        pattern=QUANTITY_GIB_MIB,
        description="The root disk's size, e.g. 20Gi. Required with an ISO source; default: the image's size.",
    )
    resetOnReboot: bool = Field(
        default=False, description="A fresh root disk from the source at every reboot (for secure environments)."
    )
    storageClassName: str | None = Field(default=None, max_length=253, description="Default: the operator setting.")


class UserDataSecretRef(Spec):
    name: str = Field(max_length=253, description="A Secret in the VM's namespace.")
    key: str = Field(default="userdata", max_length=253, description="The key holding the user-data.")


class UserData(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": rules(exactly_one(["inline", "secretRef"], "spec.userData"))
    }

    inline: str | None = Field(
        default=None,
        max_length=USER_DATA_MAX_BYTES,
        description="cloud-init user-data, at most 24 KiB (32 KiB after base64, CloudStack's limit).",
    )
    secretRef: UserDataSecretRef | None = Field(
        default=None, description="user-data from a Secret key, with the same 32 KiB limit after base64."
    )


class GPU(Spec):
    profile: str = Field(max_length=253, description="The GPUProfile to take vGPUs or GPUs from.")
    count: int = Field(default=1, ge=1, le=8, description="How many.")


class Placement(Spec):
    zone: str | None = Field(
        default=None, max_length=63, description="Run only in this zone (topology.kubernetes.io/zone)."
    )
    hostTags: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description=f"Run only on hosts with these node labels (CloudStack host tags), each named {HOST_TAG_PREFIX}*.",
        json_schema_extra=rules(
            rule(
                f"self.all(key, key.startsWith('{HOST_TAG_PREFIX}') && size(key) <= 253)",
                f"spec.placement.hostTags keys must start with {HOST_TAG_PREFIX}: host tags are node labels an "
                "administrator sets (use spec.placement.zone for zones; pinning a host is for administrators)",
            )
        ),
    )
    osPreference: str | None = Field(
        default=None, max_length=128, description="Prefer hosts labelled for this OS type; any host otherwise."
    )
    allocation: Allocation = Field(
        default=Allocation.SPREAD,
        description="Spread: the least loaded host (CloudStack horizontal). Pack: fill hosts first (vertical).",
    )
    host: str | None = Field(default=None, max_length=253, description="Pin to this host. Administrators only.")


class ExposedPort(Spec):
    name: str | None = Field(default=None, max_length=15, pattern=RFC1123_LABEL, description="A name for the port.")
    port: int = Field(ge=1, le=65535, description="The port on the public address.")
    targetPort: int | None = Field(default=None, ge=1, le=65535, description="The guest's port; default: port.")
    protocol: Protocol = Field(default=Protocol.TCP, description="TCP or UDP.")


class Expose(Spec):
    ports: list[ExposedPort] = Field(min_length=1, max_length=32, description="Ports reachable from outside.")


class Migration(Spec):
    requestedAt: AwareDatetime = Field(description="A new time asks for a live migration. Administrators only.")
    host: str | None = Field(
        default=None, max_length=253, description="The target host; default: the scheduler's choice."
    )


class VirtualMachineSpec(Spec):
    model_config = Spec.model_config | {
        "json_schema_extra": rules(
            rule(
                "!has(self.source.iso) || (has(self.rootDisk) && has(self.rootDisk.size))",
                "spec.rootDisk.size is required when booting from an ISO: the blank root disk needs a size, e.g. 20Gi",
            ),
            rule(
                "!has(self.sshKeyGuestAgentUsers) || size(self.sshKeyGuestAgentUsers) == 0 || "
                "(has(self.sshKeyPairs) && size(self.sshKeyPairs) > 0)",
                "spec.sshKeyGuestAgentUsers needs spec.sshKeyPairs: list the key pairs the guest agent installs",
            ),
            rule(
                "!has(self.source.template) || !has(self.source.template.url) || "
                "(has(self.rootDisk) && has(self.rootDisk.size))",
                "spec.rootDisk.size is required with spec.source.template.url: CDI imports into a disk of that size",
            ),
        )
    }

    displayName: str | None = Field(default=None, max_length=255, description="A name for people; default: the name.")
    hostname: str | None = Field(
        default=None,
        max_length=63,
        description="The guest's host name, an RFC 1123 label; default: the name.",
        json_schema_extra=rules(
            rule(
                f"self.matches('{RFC1123_LABEL}')",
                "spec.hostname must be an RFC 1123 label: lower-case letters, digits and '-', "
                "starting and ending with a letter or digit",
            )
        ),
    )
    group: str | None = Field(
        default=None,
        max_length=63,
        description="A group for people and selectors; also the label virtstack.io/group on the KubeVirt VM.",
        json_schema_extra=rules(
            rule(
                "self.matches('^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$')",
                "spec.group must be a label value: letters, digits, '-', '_' and '.', "
                "starting and ending with a letter or digit",
            )
        ),
    )
    osType: str | None = Field(
        default=None, max_length=128, description="The guest OS type; a change applies at the next start."
    )
    state: PowerState = Field(
        default=PowerState.RUNNING,
        description="Running or Stopped. Stopped at creation creates the VM without starting it.",
    )
    highAvailability: bool = Field(
        default=False, description="Restart the VM after any stop not asked for here, guest shutdown included."
    )
    source: Source = Field(description="Where the root disk comes from.")
    rootDisk: RootDisk = Field(
        default_factory=RootDisk, description="The root disk.", json_schema_extra={"default": {}}
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="CPU and memory (CloudStack's service offering).",
        json_schema_extra={"default": {}},
    )
    dynamicScaling: bool = Field(default=False, description="Apply CPU and memory changes to the running VM.")
    attachedISO: str | None = Field(
        default=None,
        max_length=317,
        description="A Ready ISO attached as a CD-ROM (applied when the VM next starts): its name, "
        "or namespace/name for a public ISO of another namespace.",
        json_schema_extra=rules(
            rule(
                "self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$')",
                "spec.attachedISO must be an ISO's name, or namespace/name for a public ISO of another namespace",
            )
        ),
    )
    sshKeyPairs: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="SSHKeyPairs (same namespace) whose keys the guest accepts.",
        json_schema_extra=NAME_SET,
    )
    sshKeyGuestAgentUsers: list[Annotated[str, StringConstraints(max_length=32)]] = Field(
        default_factory=list,
        max_length=8,
        description="Guest users whose authorized_keys the QEMU guest agent keeps current while the VM runs, so "
        "key changes apply live (the guest must run the agent). Empty: keys go in by cloud-init at boot, and "
        "changes wait for the next start.",
        json_schema_extra={
            **NAME_SET,
            **rules(
                rule(
                    "self.all(u, u.matches('^[a-z_][a-z0-9_-]*$'))",
                    "spec.sshKeyGuestAgentUsers must be guest user names: lower-case letters, digits, '_' and '-', "
                    "not starting with a digit or '-'",
                )
            ),
        },
    )
    userData: UserData | None = Field(default=None, description="cloud-init user-data.")
    affinityGroups: list[str] = Field(
        default_factory=list, max_length=16, description="AffinityGroups (same namespace).", json_schema_extra=NAME_SET
    )
    gpu: GPU | None = Field(default=None, description="GPUs from a GPUProfile.")
    placement: Placement | None = Field(default=None, description="Where the VM may run.")
    expose: Expose | None = Field(default=None, description="A public address for these ports (a Service).")
    rebootRequestedAt: AwareDatetime | None = Field(default=None, description="A new time asks for a reboot.")
    reinstallRequestedAt: AwareDatetime | None = Field(
        default=None, description="A new time destroys and recreates the root disk from the source."
    )
    migration: Migration | None = Field(default=None, description="Live migration. Administrators only.")


class VirtualMachineStatus(Status):
    state: VMState | None = Field(default=None, description="The lifecycle state in CloudStack's terms.")
    instanceName: str | None = Field(default=None, description="The immutable internal name, generated once.")
    host: str | None = Field(default=None, description="The node the VM runs on.")
    zone: str | None = Field(default=None, description="The zone of that node.")
    ipAddresses: list[str] = Field(default_factory=list, description="The VM's IP addresses.")
    publicAddress: str | None = Field(default=None, description="The exposed address, when spec.expose is set.")
    snapshotCount: int | None = Field(default=None, description="How many VMSnapshots the VM has.")
    currentSnapshot: str | None = Field(
        default=None, description="The VMSnapshot the VM was last taken or reverted to."
    )
    lastRebootedAt: AwareDatetime | None = Field(default=None, description="The rebootRequestedAt last carried out.")
    lastReinstalledAt: AwareDatetime | None = Field(
        default=None, description="The reinstallRequestedAt last carried out."
    )
    lastMigratedAt: AwareDatetime | None = Field(
        default=None, description="The migration.requestedAt last carried out."
    )


class VirtualMachine(Resource):
    spec: VirtualMachineSpec
    status: VirtualMachineStatus | None = None
