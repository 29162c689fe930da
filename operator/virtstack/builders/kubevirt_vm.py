"""The KubeVirt VirtualMachine a virtstack VirtualMachine owns (pure: spec in, manifest out)."""

from __future__ import annotations

from ..api.crd import GROUP, VERSION
from ..api.virtualmachine import PowerState, VirtualMachineSpec
from .labels import MANAGED_BY, VM_LABEL

ROOT_DISK = "rootdisk"
POD_NETWORK = "default"


def run_strategy(spec: VirtualMachineSpec) -> str:
    return "Always" if spec.state is PowerState.RUNNING else "Halted"


def build_kubevirt_vm(name: str, namespace: str, uid: str, spec: VirtualMachineSpec) -> dict:
    """Same name as ours, controller-owned by it, so garbage collection removes it with ours."""
    labels = {VM_LABEL: name, **MANAGED_BY}
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
        "spec": {
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
                    "volumes": [{"name": ROOT_DISK, "containerDisk": {"image": spec.source.template.image}}],
                },
            },
        },
    }
