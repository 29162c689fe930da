"""CloudStack's guest meta-data on KubeVirt (pure).

KubeVirt writes the NoCloud meta-data itself (instance-id `<name>.<namespace>`, local-hostname)
and has no field for more keys, so the guest gets CloudStack's keys on a second small disk: a
KubeVirt `downwardAPI` volume with the ISO label `VSMETA`, one file per key, read from the
launcher pod's own metadata when the VM starts:

| file              | from                                                                      |
|-------------------|---------------------------------------------------------------------------|
| instance-id       | the template annotation `virtstack.io/instance-name` (status.instanceName) |
| local-hostname    | the template annotation `virtstack.io/hostname`                            |
| service-offering  | the template annotation `virtstack.io/service-offering` (`<cpu>vcpu-<mem>`) |
| availability-zone | the pod label `topology.kubernetes.io/zone`, which the API server copies   |
|                   | from the node when the pod is bound (PodTopologyLabels, Kubernetes 1.35+)  |

The files are fixed for the life of a VMI, as KubeVirt builds the disk at start: a resize the
guest takes live shows in the file at the next start. `local-ipv4` has no file: with KubeVirt's
masquerade binding the guest's own address comes from KubeVirt's DHCP, and its address in the
cluster is `status.ipAddresses`.
"""

from __future__ import annotations

from .placement import ZONE_LABEL

META_DATA_DISK = "metadata"
META_DATA_LABEL = "VSMETA"
INSTANCE_NAME_ANNOTATION = "virtstack.io/instance-name"
HOSTNAME_ANNOTATION = "virtstack.io/hostname"
SERVICE_OFFERING_ANNOTATION = "virtstack.io/service-offering"


def service_offering(cpu: int, memory: str) -> str:
    """CloudStack names a VM's size by its service offering; ours is the size itself, e.g. 2vcpu-4Gi."""
    return f"{cpu}vcpu-{memory}"


def meta_data_annotations(instance_name: str, hostname: str, cpu: int, memory: str) -> dict[str, str]:
    """The template annotations the meta-data files are read from (KubeVirt copies them to the pod)."""
    return {
        INSTANCE_NAME_ANNOTATION: instance_name,
        HOSTNAME_ANNOTATION: hostname,
        SERVICE_OFFERING_ANNOTATION: service_offering(cpu, memory),
    }


def meta_data_disk() -> tuple[dict, dict]:
    """The disk and downwardAPI volume that carry the meta-data files."""
    files = {
        "instance-id": f"metadata.annotations['{INSTANCE_NAME_ANNOTATION}']",
        "local-hostname": f"metadata.annotations['{HOSTNAME_ANNOTATION}']",
        "service-offering": f"metadata.annotations['{SERVICE_OFFERING_ANNOTATION}']",
        "availability-zone": f"metadata.labels['{ZONE_LABEL}']",
    }
    volume = {
        "name": META_DATA_DISK,
        "downwardAPI": {
            "volumeLabel": META_DATA_LABEL,
            "fields": [{"path": path, "fieldRef": {"fieldPath": field}} for path, field in files.items()],
        },
    }
    return {"name": META_DATA_DISK, "disk": {"bus": "virtio"}}, volume
