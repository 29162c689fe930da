"""GPUs: KubeVirt `devices.gpus` naming the profile's extended resource, so the scheduler counts capacity (pure).

Non-GPU VMs prefer hosts without GPUs (CloudStack puts GPU hosts last for them): hosts with GPUs
carry the label GPU feature discovery sets, and non-GPU VMs get a preferred term against it.
"""

from __future__ import annotations

from ..api.gpuprofile import GPUProfileSpec
from ..api.virtualmachine import GPU

GPU_NODE_LABEL = "nvidia.com/gpu.present"
AVOID_GPU_HOSTS_WEIGHT = 30


def gpu_devices(gpu: GPU, profile: GPUProfileSpec) -> list[dict]:
    return [{"name": f"gpu{index}", "deviceName": profile.resourceName} for index in range(gpu.count)]


def avoid_gpu_hosts() -> dict:
    term = {"matchExpressions": [{"key": GPU_NODE_LABEL, "operator": "NotIn", "values": ["true"]}]}
    return {"weight": AVOID_GPU_HOSTS_WEIGHT, "preference": term}
