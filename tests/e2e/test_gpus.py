"""GPU VMs on the real scheduler: capacity from the hosts' extended resources (host-c offers two vGPUs)."""

from __future__ import annotations

import pytest
from virtstack_testbed.testing import Cluster, condition, wait_for

from .test_vm_lifecycle import vm_with, wait_state

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.simulator]
PROFILE = "grid-k240q-e2e"


@pytest.fixture
def profile(cluster: Cluster):
    cluster.apply(
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "GPUProfile",
            "metadata": {"name": PROFILE},
            "spec": {"type": "VGPU", "resourceName": "nvidia.com/GRID_K240Q", "vgpuType": "GRID K240Q"},
        }
    )
    yield PROFILE
    cluster.kubectl("delete", "gpuprofile", PROFILE, "--ignore-not-found")


def profile_status(cluster: Cluster) -> dict:
    return (cluster.get("gpuprofile", PROFILE) or {}).get("status", {})


def test_two_vgpus_run_the_third_waits_and_profile_counts_follow(
    cluster: Cluster, namespace: str, profile: str
) -> None:
    for name in ("gpu-1", "gpu-2"):
        cluster.apply(vm_with(name, gpu={"profile": profile}), namespace=namespace)
    assert {wait_state(cluster, namespace, name, "Running")["host"] for name in ("gpu-1", "gpu-2")} == {"host-c"}
    counts = wait_for(lambda: (s := profile_status(cluster)).get("allocated") == 2 and s, 30, "two allocated")
    assert (counts["capacity"], counts["available"]) == (2, 0)

    cluster.apply(vm_with("gpu-3", gpu={"profile": profile}), namespace=namespace)
    waiting = wait_for(
        lambda: (c := condition(cluster.get("vsvm", "gpu-3", namespace), "Scheduled")) and c["status"] == "False" and c,
        60,
        "gpu-3 unscheduled",
    )
    assert waiting["reason"] == "InsufficientCapacity"
    assert "Insufficient nvidia.com/GRID_K240Q" in waiting["message"] and f"GPUProfile {profile}" in waiting["message"]

    cluster.kubectl("delete", "vsvm", "gpu-1", "-n", namespace)
    wait_state(cluster, namespace, "gpu-3", "Running")
    wait_for(lambda: profile_status(cluster).get("allocated") == 2, 30, "the freed vGPU taken by gpu-3")


def test_non_gpu_vm_avoids_the_gpu_host_while_others_are_free(cluster: Cluster, namespace: str) -> None:
    for index in range(3):
        cluster.apply(vm_with(f"plain-{index}"), namespace=namespace)
    hosts = {wait_state(cluster, namespace, f"plain-{index}", "Running")["host"] for index in range(3)}
    assert "host-c" not in hosts


def test_missing_profile_blocks_the_vm_with_a_clear_condition(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("nogpu", gpu={"profile": "nonexistent"}), namespace=namespace)
    ready = wait_for(
        lambda: (
            (c := condition(cluster.get("vsvm", "nogpu", namespace), "Ready"))
            and c["reason"] == "GPUProfileMissing"
            and c
        ),
        30,
        "GPUProfileMissing",
    )
    assert "GPUProfile nonexistent (spec.gpu.profile) does not exist" in ready["message"]
    assert cluster.get("virtualmachines.kubevirt.io", "nogpu", namespace) is None
