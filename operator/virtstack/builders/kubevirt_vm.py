"""The KubeVirt VirtualMachine a virtstack VirtualMachine owns (pure: spec in, manifest out)."""

from __future__ import annotations

from ..api.crd import GROUP, VERSION
from ..api.virtualmachine import PowerState, VirtualMachineSpec
from .labels import MANAGED_BY, VM_LABEL

ROOT_DISK = "rootdisk"
POD_NETWORK = "default"


def run_strategy(spec: VirtualMachineSpec) -> str:
    return "Always" if spec.state is PowerState.RUNNING else "Halted"


def root_disk_name(name: str) -> str:
    """The DataVolume (and PVC) holding the VM's root disk: deterministic, so a rerun finds it."""
    return f"{name}-rootdisk"


def _root_volume(name: str, namespace: str, spec: VirtualMachineSpec) -> tuple[dict, list[dict]]:
    """The root disk's volume, and the DataVolume templates CDI fills it from (none for a container disk)."""
    template = spec.source.template
    if template is None:
        raise ValueError("an ISO source is not built here")
    if template.image is not None:
        return {"name": ROOT_DISK, "containerDisk": {"image": template.image}}, []
    if template.url is not None:
        source: dict = {"source": {"http": {"url": template.url}}}
    elif template.pvc is not None:
        source = {"source": {"pvc": {"namespace": namespace, "name": template.pvc.name}}}
    else:
        reference = template.dataSource
        source = {
            "sourceRef": {
                "kind": "DataSource",
                "name": reference.name,
                **({"namespace": reference.namespace} if reference.namespace else {}),
            }
        }
    storage: dict = {}
    if spec.rootDisk.size is not None:
        storage["resources"] = {"requests": {"storage": spec.rootDisk.size}}
    if spec.rootDisk.storageClassName is not None:
        storage["storageClassName"] = spec.rootDisk.storageClassName
    data_volume = {"metadata": {"name": root_disk_name(name)}, "spec": {**source, "storage": storage}}
    return {"name": ROOT_DISK, "dataVolume": {"name": root_disk_name(name)}}, [data_volume]


def build_kubevirt_vm(name: str, namespace: str, uid: str, spec: VirtualMachineSpec) -> dict:
    """Same name as ours, controller-owned by it, so garbage collection removes it with ours."""
    labels = {VM_LABEL: name, **MANAGED_BY}
    root_volume, data_volumes = _root_volume(name, namespace, spec)
    vm_spec: dict = {
        "runStrategy": run_strategy(spec),
        "template": {
            "metadata": {"labels": {VM_LABEL: name}},
            "spec": {
                "domain": {
                    "cpu": {"sockets": spec.resources.cpu, "cores": 1, "threads": 1},
                    "memory": {"guest": spec.resources.memory},
                    "devices": {
                        "disks": [{"name": ROOT_DISK, "disk": {"bus": "virtio"}}],
                        "interfaces": [{"name": POD_NETWORK, "masquerade": {}}],
                    },
                },
                "networks": [{"name": POD_NETWORK, "pod": {}}],
                "volumes": [root_volume],
            },
        },
    }
    if data_volumes:
        vm_spec["dataVolumeTemplates"] = data_volumes
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "VirtualMachine",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": vm_spec,
    }
