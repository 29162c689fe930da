"""The virt-launcher Pod KubeVirt renders for a VMI (pure).

Follows kubevirt/kubevirt pkg/virt-controller/services/template.go, renderresources.go and
nodeselectorrenderer.go: the pod carries the VMI's scheduling constraints so that the real
kube-scheduler places the VM, and requests what the VM will use on the host. It also carries the
VMI's annotations (less kubectl's and KubeVirt's api-version bookkeeping) and a pod downward-API
volume for each VMI `downwardAPI` volume, which virt-launcher turns into the guest's disk.
"""

from __future__ import annotations

import math

from .quantity import format_bytes, parse_cpu_millis, parse_quantity

LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.8.0"
CPU_ALLOCATION_RATIO = 10  # KubeVirt CR developerConfiguration.cpuAllocationRatio default
# A fixed approximation of KubeVirt's computed overhead (GetMemoryOverhead: pagetables,
# virt-launcher, qemu, video RAM); the exact formula depends on the domain and is not simulated.
MEMORY_OVERHEAD_BYTES = 224 * 1024 * 1024
LAUNCHER_GRACE_EXTRA_SECONDS = 30  # the pod's grace = the VMI's grace + this
DEFAULT_VMI_GRACE_SECONDS = 30

LABEL_APP = "kubevirt.io"
LABEL_CREATED_BY = "kubevirt.io/created-by"
LABEL_VM_NAME = "vm.kubevirt.io/name"
LABEL_SCHEDULABLE = "kubevirt.io/schedulable"
DOWNWARD_API_DIR = "/var/run/kubevirt-private/downwardapi"
# template.go filterVMIAnnotationsForPod: VMI annotations with these prefixes stay off the pod.
ANNOTATIONS_NOT_COPIED = (
    "kubectl.kubernetes.io",
    "kubevirt.io/storage-observed-api-version",
    "kubevirt.io/latest-observed-api-version",
)


def vcpus(domain: dict) -> int:
    cpu = domain.get("cpu") or {}
    topology = cpu.get("cores", 1) * cpu.get("sockets", 1) * cpu.get("threads", 1)
    requested = (domain.get("resources") or {}).get("requests", {}).get("cpu")
    if not cpu and requested is not None:
        return max(1, math.ceil(parse_cpu_millis(requested) / 1000))
    return topology


def guest_memory_bytes(domain: dict) -> int:
    guest = (domain.get("memory") or {}).get("guest")
    if guest is None:
        guest = (domain.get("resources") or {}).get("requests", {}).get("memory", "0")
    return parse_quantity(guest)


def launcher_resources(domain: dict) -> dict:
    """CPU request = vCPUs / ratio, memory = guest + overhead, one unit per GPU / host device."""
    requests = {
        "cpu": f"{vcpus(domain) * 1000 // CPU_ALLOCATION_RATIO}m",
        "memory": format_bytes(guest_memory_bytes(domain) + MEMORY_OVERHEAD_BYTES),
        "ephemeral-storage": "50M",
    }
    limits = {"devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1", "devices.kubevirt.io/vhost-net": "1"}
    devices = domain.get("devices") or {}
    for device in [*devices.get("gpus", []), *devices.get("hostDevices", [])]:
        name = device["deviceName"]
        count = int(requests.get(name, "0")) + 1
        requests[name] = limits[name] = str(count)
    return {"requests": requests, "limits": limits}


def launcher_pod(vmi: dict) -> dict:
    meta, spec = vmi["metadata"], vmi["spec"]
    name = meta["name"]
    hostname = spec.get("hostname") or name.split(".")[0]
    grace = spec.get("terminationGracePeriodSeconds", DEFAULT_VMI_GRACE_SECONDS)
    downward = [v for v in spec.get("volumes") or [] if "downwardAPI" in v]
    compute: dict = {
        "name": "compute",
        "image": LAUNCHER_IMAGE,
        "command": ["/usr/bin/virt-launcher-monitor", "--name", name, "--namespace", meta["namespace"]],
        "resources": launcher_resources(spec.get("domain") or {}),
    }
    if downward:
        compute["volumeMounts"] = [
            {"name": v["name"], "mountPath": f"{DOWNWARD_API_DIR}/{v['name']}"} for v in downward
        ]
    pod_spec: dict = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace + LAUNCHER_GRACE_EXTRA_SECONDS,
        "automountServiceAccountToken": False,
        "hostname": hostname,
        "nodeSelector": {**(spec.get("nodeSelector") or {}), LABEL_SCHEDULABLE: "true"},
        "containers": [compute],
    }
    if downward:
        pod_spec["volumes"] = [
            {"name": v["name"], "downwardAPI": {"items": v["downwardAPI"]["fields"]}} for v in downward
        ]
    for field in (
        "affinity",
        "tolerations",
        "schedulerName",
        "priorityClassName",
        "topologySpreadConstraints",
        "dnsPolicy",
        "dnsConfig",
        "subdomain",
    ):
        if spec.get(field):
            pod_spec[field] = spec[field]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"virt-launcher-{name}-",
            "namespace": meta["namespace"],
            "labels": {
                **(meta.get("labels") or {}),
                LABEL_APP: "virt-launcher",
                LABEL_CREATED_BY: meta["uid"],
                LABEL_VM_NAME: hostname,
            },
            "annotations": {**_pod_annotations(meta.get("annotations") or {}), "kubevirt.io/domain": name},
            "ownerReferences": [
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachineInstance",
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }


def _pod_annotations(vmi_annotations: dict) -> dict:
    return {k: v for k, v in vmi_annotations.items() if not k.startswith(ANNOTATIONS_NOT_COPIED)}
