"""The KubeVirt VirtualMachine a virtstack VirtualMachine owns (pure: spec in, manifest out).

Power state and HA map onto KubeVirt's run strategies (kubevirt-behaviour.md §1):

| spec.state | highAvailability | runStrategy | after a guest shutdown | after a crash or host loss |
|------------|------------------|-------------|------------------------|----------------------------|
| Stopped    | any              | Halted      | (no VMI)               | (no VMI)                   |
| Running    | true             | Always      | restarted              | restarted                  |
| Running    | false            | Once        | VMI kept: Stopped      | VMI kept: Down             |

With Once the ended VMI stays, so the VM stays Stopped or Down until the user asks for a start
(state Stopped then Running, or a reboot request), as CloudStack does for non-HA VMs.

While an old root DataVolume is replaced (reinstall, reset on reboot) the run strategy is Halted
whatever the spec says, and restored once the DataVolume is gone (builders/rootdisk.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.affinitygroup import AffinityGroupSpec
from ..api.gpuprofile import GPUProfileSpec
from ..api.settings import Settings
from ..api.virtualmachine import PowerState, VirtualMachineSpec
from ..objects import condition_of
from . import placement
from .access import KEYS_HASH_ANNOTATION, access_credentials, keys_hash
from .affinity import group_labels, pod_affinity
from .cloudinit import CLOUD_INIT_DISK, cloud_init_volume
from .gpu import avoid_gpu_hosts, gpu_devices
from .iso import ResolvedIso, blank_disk_template, iso_parts
from .labels import GROUP_LABEL, MANAGED_BY, VM_LABEL
from .metadata import meta_data_annotations, meta_data_disk
from .names import display_name, hostname
from .owner import owner_reference

ROOT_DISK = "rootdisk"
EMPTY_CLOUD_CONFIG = b"#cloud-config\n"
POD_NETWORK = "default"
DISPLAY_NAME_ANNOTATION = "virtstack.io/display-name"
OS_TYPE_ANNOTATION = "virtstack.io/os-type"
# The reboot request a VMI was started under: KubeVirt copies template annotations to each new VMI,
# so a VMI whose copy differs from the spec's request is the one a reboot must replace.
REBOOT_ANNOTATION = "virtstack.io/reboot-requested-at"
# The ISO the KubeVirt VM was built with: no disk change while VM snapshots exist (status/vmsnapshot.py).
ATTACHED_ISO_ANNOTATION = "virtstack.io/attached-iso"


@dataclass(frozen=True)
class VMInputs:
    """Everything the KubeVirt VM is built from, resolved by the controller beforehand."""

    name: str
    namespace: str
    uid: str
    spec: VirtualMachineSpec
    settings: Settings
    instance_name: str
    user_data: bytes | None = None
    # The size the running guest keeps while a live resize must wait (dynamic scaling without a guest agent).
    held_size: tuple[int, str] | None = None
    # The VM's AffinityGroups that exist, by name (a missing one is reported, not applied).
    affinity_groups: dict[str, AffinityGroupSpec] = field(default_factory=dict)
    gpu_profile: GPUProfileSpec | None = None  # resolved from spec.gpu.profile
    public_keys: dict[str, str] = field(default_factory=dict)  # key pair name -> public key line
    wait_for_room: bool = False  # the (N-1) capacity limit holds the start back: Halted until there is room
    halted: bool = False  # a revert to a VMSnapshot runs: KubeVirt restores only a stopped VM
    boot_iso: ResolvedIso | None = None  # resolved from spec.source.iso (Ready, usable here)
    attached_iso: ResolvedIso | None = None  # resolved from spec.attachedISO


def run_strategy(spec: VirtualMachineSpec) -> str:
    if spec.state is PowerState.STOPPED:
        return "Halted"
    return "Always" if spec.highAvailability else "Once"


def reboot_request(spec: VirtualMachineSpec) -> str | None:
    return spec.rebootRequestedAt.strftime("%Y-%m-%dT%H:%M:%SZ") if spec.rebootRequestedAt else None


def reboot_pending(spec: VirtualMachineSpec, vmi: dict | None) -> bool:
    """A VMI started before the latest reboot request (and not already on its way out)."""
    requested = reboot_request(spec)
    if requested is None or vmi is None or vmi["metadata"].get("deletionTimestamp"):
        return False
    return (vmi["metadata"].get("annotations") or {}).get(REBOOT_ANNOTATION) != requested


def imported_urls(kubevirt_vm: dict | None) -> set[str]:
    """The http URLs a built KubeVirt VM's DataVolume templates import."""
    templates = ((kubevirt_vm or {}).get("spec") or {}).get("dataVolumeTemplates") or []
    return {url for t in templates if (url := ((t.get("spec") or {}).get("source") or {}).get("http", {}).get("url"))}


def root_disk_name(name: str) -> str:
    """The DataVolume (and PVC) holding the VM's root disk: deterministic, so a rerun finds it."""
    return f"{name}-rootdisk"


def build_kubevirt_vm(inputs: VMInputs) -> dict:
    """Same name as ours, controller-owned by it, so garbage collection removes it with ours."""
    name, spec = inputs.name, inputs.spec
    root_volume, data_volumes = _root_volume(inputs)
    disks = [{"name": ROOT_DISK, "disk": {"bus": "virtio"}, **({"bootOrder": 2} if inputs.boot_iso else {})}]
    volumes = [root_volume]
    cdrom_disks, cdrom_volumes, cdrom_templates = iso_parts(
        name, inputs.boot_iso, inputs.attached_iso, inputs.settings.defaultStorageClass
    )
    disks += cdrom_disks
    volumes += cdrom_volumes
    data_volumes += cdrom_templates
    if inputs.user_data is not None or _keys_by_cloud_init(inputs):
        # NoCloud key propagation needs a NoCloud volume: an empty cloud-config when there is no user-data.
        volume, _ = cloud_init_volume(name, inputs.user_data or EMPTY_CLOUD_CONFIG)
        disks.append({"name": CLOUD_INIT_DISK, "disk": {"bus": "virtio"}})
        volumes.append(volume)
    meta_disk, meta_volume = meta_data_disk()
    disks.append(meta_disk)
    volumes.append(meta_volume)
    template_spec: dict = {
        "hostname": hostname(name, spec),
        "domain": {
            **_cpu_and_memory(spec, inputs.held_size),
            "devices": {"disks": disks, "interfaces": [{"name": POD_NETWORK, "masquerade": {}}]},
        },
        "networks": [{"name": POD_NETWORK, "pod": {}}],
        "volumes": volumes,
        "schedulerName": placement.scheduler_name(spec.placement, inputs.settings.schedulerNames),
    }
    if inputs.public_keys:
        template_spec["accessCredentials"] = access_credentials(name, spec.sshKeyGuestAgentUsers)
    if selector := placement.node_selector(spec.placement):
        template_spec["nodeSelector"] = selector
    affinity = pod_affinity(inputs.affinity_groups)
    preferred = placement.preferred_nodes(spec.placement)
    if spec.gpu is None:
        preferred.append(avoid_gpu_hosts())
    else:
        template_spec["domain"]["devices"]["gpus"] = gpu_devices(spec.gpu, inputs.gpu_profile)
    if preferred:
        affinity["nodeAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": preferred}
    if affinity:
        template_spec["affinity"] = affinity
    vm_spec: dict = {
        "runStrategy": "Halted" if inputs.wait_for_room or inputs.halted else run_strategy(spec),
        "template": {"metadata": _template_metadata(inputs), "spec": template_spec},
    }
    if data_volumes:
        vm_spec["dataVolumeTemplates"] = data_volumes
    labels = {VM_LABEL: name, **MANAGED_BY}
    if spec.group:
        labels[GROUP_LABEL] = spec.group
    metadata: dict = {
        "name": name,
        "namespace": inputs.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(name, inputs.uid)],
    }
    if spec.attachedISO:
        metadata["annotations"] = {ATTACHED_ISO_ANNOTATION: spec.attachedISO}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": metadata, "spec": vm_spec}


def _cpu_and_memory(spec: VirtualMachineSpec, held_size: tuple[int, str] | None) -> dict:
    """Sockets and guest memory, so that KubeVirt itself decides live versus at the next start.

    With dynamicScaling, maxSockets/maxGuest are left to KubeVirt's defaults (4x the boot size), so
    changes within them are hotplugged live. Without it they equal the size: any change exceeds
    them, and KubeVirt sets RestartRequired and applies it when the VM next starts.
    """
    cpu, memory = booted_size(spec, held_size)
    cpu_spec: dict = {"sockets": cpu, "cores": 1, "threads": 1}
    memory_spec: dict = {"guest": memory}
    if not spec.dynamicScaling:
        cpu_spec["maxSockets"] = cpu
        memory_spec["maxGuest"] = memory
    return {"cpu": cpu_spec, "memory": memory_spec}


def booted_size(spec: VirtualMachineSpec, held_size: tuple[int, str] | None) -> tuple[int, str]:
    """The CPUs and memory the KubeVirt VM asks for: the spec's, unless a live resize is held back."""
    return held_size or (spec.resources.cpu, spec.resources.memory)


def held_size(spec: VirtualMachineSpec, kubevirt_vm: dict | None, vmi: dict | None) -> tuple[int, str] | None:
    """The running size to keep while a dynamic resize waits for the guest agent (CloudStack needs its
    guest tools to scale a running VM); None when the new size may go to KubeVirt now.

    A reboot request, or a VMI that ended or is going, lets the new size through: the next start uses it.
    """
    current = template_size(kubevirt_vm)
    if not spec.dynamicScaling or current is None or current == (spec.resources.cpu, spec.resources.memory):
        return None
    if vmi is None or vmi["metadata"].get("deletionTimestamp") or reboot_pending(spec, vmi):
        return None
    if (vmi.get("status") or {}).get("phase") != "Running" or agent_connected(vmi):
        return None
    return current


def agent_connected(vmi: dict) -> bool:
    return (condition_of(vmi, "AgentConnected") or {}).get("status") == "True"


def template_size(kubevirt_vm: dict | None) -> tuple[int, str] | None:
    """The size a KubeVirt VM's template asks for now."""
    if kubevirt_vm is None:
        return None
    domain = kubevirt_vm["spec"]["template"]["spec"]["domain"]
    return domain["cpu"]["sockets"], domain["memory"]["guest"]


def _template_metadata(inputs: VMInputs) -> dict:
    """Labels select the VM's pods (Services, affinity); annotations carry CloudStack's names to the VMI."""
    labels = {VM_LABEL: inputs.name, **group_labels(inputs.affinity_groups)}
    if inputs.spec.group:
        labels[GROUP_LABEL] = inputs.spec.group
    cpu, memory = booted_size(inputs.spec, inputs.held_size)
    annotations = {
        **meta_data_annotations(inputs.instance_name, hostname(inputs.name, inputs.spec), cpu, memory),
        DISPLAY_NAME_ANNOTATION: display_name(inputs.name, inputs.spec),
    }
    if inputs.spec.osType:
        annotations[OS_TYPE_ANNOTATION] = inputs.spec.osType  # a template change: applies at the next start
    if (requested := reboot_request(inputs.spec)) is not None:
        annotations[REBOOT_ANNOTATION] = requested
    if _keys_by_cloud_init(inputs):
        annotations[KEYS_HASH_ANNOTATION] = keys_hash(inputs.public_keys)
    return {"labels": labels, "annotations": annotations}


def _keys_by_cloud_init(inputs: VMInputs) -> bool:
    """Keys go in at boot, by cloud-init (with guest-agent users they go in live instead)."""
    return bool(inputs.public_keys) and not inputs.spec.sshKeyGuestAgentUsers


def _root_volume(inputs: VMInputs) -> tuple[dict, list[dict]]:
    """The root disk's volume, and the DataVolume templates CDI fills it from (none for a container disk)."""
    spec = inputs.spec
    template = spec.source.template
    storage_class = spec.rootDisk.storageClassName or inputs.settings.defaultStorageClass
    if template is None:  # an ISO installs onto a blank disk
        blank = blank_disk_template(root_disk_name(inputs.name), spec.rootDisk.size, storage_class)
        return {"name": ROOT_DISK, "dataVolume": {"name": root_disk_name(inputs.name)}}, [blank]
    if template.image is not None:
        return {"name": ROOT_DISK, "containerDisk": {"image": template.image}}, []
    if template.url is not None:
        source: dict = {"source": {"http": {"url": template.url}}}
    elif template.pvc is not None:
        source = {"source": {"pvc": {"namespace": inputs.namespace, "name": template.pvc.name}}}
    else:
        reference = template.dataSource
        namespace = {"namespace": reference.namespace} if reference.namespace else {}
        source = {"sourceRef": {"kind": "DataSource", "name": reference.name, **namespace}}
    storage: dict = {}
    if spec.rootDisk.size is not None:
        storage["resources"] = {"requests": {"storage": spec.rootDisk.size}}
    if storage_class:
        storage["storageClassName"] = storage_class
    data_volume = {"metadata": {"name": root_disk_name(inputs.name)}, "spec": {**source, "storage": storage}}
    return {"name": ROOT_DISK, "dataVolume": {"name": root_disk_name(inputs.name)}}, [data_volume]
