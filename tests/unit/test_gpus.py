"""GPUs: devices on the KubeVirt VM, non-GPU VMs steered off GPU hosts, and the profile's capacity."""

from __future__ import annotations

from virtstack.api.gpuprofile import GPUProfileSpec, GPUProfileStatus
from virtstack.api.settings import Settings
from virtstack.api.virtualmachine import VirtualMachineSpec
from virtstack.builders.kubevirt_vm import VMInputs, build_kubevirt_vm
from virtstack.builders.quantity import whole_units
from virtstack.status.gpuprofile import profile_status

PROFILE = GPUProfileSpec.model_validate({"type": "VGPU", "resourceName": "nvidia.com/GRID_K240Q"})


def template(gpu: dict | None) -> dict:
    spec = VirtualMachineSpec.model_validate({"source": {"template": {"image": "x"}}, **({"gpu": gpu} if gpu else {})})
    inputs = VMInputs("vm", "ns", "uid", spec, Settings(), "i-1", gpu_profile=PROFILE if gpu else None)
    return build_kubevirt_vm(inputs)["spec"]["template"]["spec"]


def test_gpu_vm_requests_the_profiles_resource_and_others_avoid_gpu_hosts() -> None:
    gpus = template({"profile": "k240q", "count": 2})["domain"]["devices"]["gpus"]
    assert gpus == [
        {"name": "gpu0", "deviceName": "nvidia.com/GRID_K240Q"},
        {"name": "gpu1", "deviceName": "nvidia.com/GRID_K240Q"},
    ]
    plain = template(None)
    assert "gpus" not in plain["domain"]["devices"]
    (avoid,) = plain["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert avoid["preference"]["matchExpressions"] == [
        {"key": "nvidia.com/gpu.present", "operator": "NotIn", "values": ["true"]}
    ]
    assert "affinity" not in template({"profile": "k240q"}), "a GPU VM does not avoid GPU hosts"


def test_profile_capacity_allocation_and_availability() -> None:
    allocatable = {
        "host-a": {"cpu": "16"},
        "host-c": {"nvidia.com/GRID_K240Q": "2"},
        "host-e": {"nvidia.com/GRID_K240Q": "4"},
    }
    status = profile_status(
        1, PROFILE, allocatable, {"host-c": 2, "host-e": 1}, GPUProfileStatus(), "2026-11-25T12:00:00Z"
    )
    assert [(n.name, n.capacity, n.allocated) for n in status.nodes] == [("host-c", 2, 2), ("host-e", 4, 1)]
    assert (status.capacity, status.allocated, status.available) == (6, 3, 3)
    empty = profile_status(1, PROFILE, {"host-a": {"cpu": "16"}}, {}, GPUProfileStatus(), "2026-11-25T12:00:00Z")
    assert empty.capacity == 0 and empty.conditions[0].reason == "NoCapacity"
    assert "no node advertises nvidia.com/GRID_K240Q" in empty.conditions[0].message


def test_whole_units() -> None:
    assert (whole_units("2"), whole_units("1k"), whole_units("0")) == (2, 1000, 0)
