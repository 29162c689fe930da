"""GPU VMs on the real scheduler: capacity from the hosts' extended resources (host-c offers two vGPUs)."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_condition, wait_for

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
    waiting = wait_condition(cluster, "vsvm", "gpu-3", namespace, "Scheduled", 60, "gpu-3 unscheduled", status="False")
    assert waiting["reason"] == "InsufficientCapacity"
    assert "Insufficient nvidia.com/GRID_K240Q" in waiting["message"] and f"GPUProfile {profile}" in waiting["message"]

    cluster.kubectl("delete", "vsvm", "gpu-1", "-n", namespace)
    wait_state(cluster, namespace, "gpu-3", "Running")
    wait_for(lambda: profile_status(cluster).get("allocated") == 2, 30, "the freed vGPU taken by gpu-3")

    cluster.apply(vm_with("gpu-2", state="Stopped", gpu={"profile": profile}), namespace=namespace)
    released = wait_for(lambda: (s := profile_status(cluster)).get("allocated") == 1 and s, 60, "released on stop")
    assert (released["available"], released["nodes"]) == (1, [{"name": "host-c", "capacity": 2, "allocated": 1}])


def test_non_gpu_vm_avoids_the_gpu_host_while_others_are_free(cluster: Cluster, namespace: str) -> None:
    for index in range(3):
        cluster.apply(vm_with(f"plain-{index}"), namespace=namespace)
    hosts = {wait_state(cluster, namespace, f"plain-{index}", "Running")["host"] for index in range(3)}
    assert "host-c" not in hosts


def test_missing_profile_blocks_the_vm_with_a_clear_condition(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("nogpu", gpu={"profile": "nonexistent"}), namespace=namespace)
    ready = wait_condition(
        cluster, "vsvm", "nogpu", namespace, "Ready", 30, "GPUProfileMissing", reason="GPUProfileMissing"
    )
    assert "GPUProfile nonexistent (spec.gpu.profile) does not exist" in ready["message"]
    assert cluster.get("virtualmachines.kubevirt.io", "nogpu", namespace) is None


def test_a_namespace_over_its_gpu_quota_gets_a_clear_error_and_others_are_unaffected(
    cluster: Cluster, namespace: str, profile: str
) -> None:
    wait_for(lambda: profile_status(cluster).get("allocated") == 0, 120, "earlier tests' GPU VMs gone")
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus"},
        "spec": {"hard": {"requests.nvidia.com/GRID_K240Q": "1"}},
    }
    cluster.apply(quota, namespace=namespace)
    # The quota admission refuses every pod until kube-controller-manager has computed the quota's usage.
    wait_for(lambda: (cluster.get("resourcequota", "gpus", namespace) or {}).get("status", {}).get("hard"), 30, "usage")
    other = f"{namespace}-other"
    cluster.kubectl("create", "namespace", other)
    try:
        cluster.apply(vm_with("within", gpu={"profile": profile}), namespace=namespace)
        wait_state(cluster, namespace, "within", "Running")
        cluster.apply(vm_with("beyond", gpu={"profile": profile}), namespace=namespace)
        refused = wait_condition(
            cluster, "vsvm", "beyond", namespace, "Scheduled", 60, "beyond refused", status="False"
        )
        assert refused["reason"] == "QuotaExceeded"
        assert "ResourceQuota gpus is used up" in refused["message"]
        assert f"requests.nvidia.com/GRID_K240Q=1 (spec.gpu: GPUProfile {profile})" in refused["message"]
        assert condition_of(cluster.get("vsvm", "beyond", namespace), "Ready")["reason"] == "QuotaExceeded"
        events = cluster.list("events", namespace)
        assert any(e["reason"] == "FailedCreate" and e["involvedObject"]["name"] == "beyond" for e in events)

        cluster.apply(vm_with("elsewhere", gpu={"profile": profile}), namespace=other)
        assert wait_state(cluster, other, "elsewhere", "Running")["host"] == "host-c", "another namespace is unaffected"

        cluster.kubectl("delete", "vsvm", "within", "-n", namespace)
        wait_state(cluster, namespace, "beyond", "Running", timeout=180)  # KubeVirt's back-off decides when
        assert condition_of(cluster.get("vsvm", "beyond", namespace), "Scheduled")["status"] == "True"
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_adding_a_gpu_to_a_running_vm_waits_for_a_stop_and_start(
    cluster: Cluster, namespace: str, profile: str
) -> None:
    """CloudStack changes a VM's GPU offline only: the running VMI keeps what it started with."""
    cluster.apply(vm_with("grow"), namespace=namespace)
    first_host = wait_state(cluster, namespace, "grow", "Running")["host"]
    assert first_host != "host-c", "a VM without a GPU avoids the GPU host"

    cluster.apply(vm_with("grow", gpu={"profile": profile}), namespace=namespace)
    restart = wait_condition(
        cluster, "vsvm", "grow", namespace, "RestartRequired", 60, "RestartRequired for the GPU change", status="True"
    )
    assert restart["message"]
    vmi = cluster.get("virtualmachineinstances.kubevirt.io", "grow", namespace)
    assert not vmi["spec"]["domain"]["devices"].get("gpus"), "the running VM keeps no GPU"

    cluster.apply(vm_with("grow", state="Stopped", gpu={"profile": profile}), namespace=namespace)
    wait_state(cluster, namespace, "grow", "Stopped")
    wait_for(lambda: profile_status(cluster).get("available", 0) >= 1, 120, "a free vGPU (earlier tests' VMs gone)")
    cluster.apply(vm_with("grow", gpu={"profile": profile}), namespace=namespace)
    assert wait_state(cluster, namespace, "grow", "Running")["host"] == "host-c"
    vmi = cluster.get("virtualmachineinstances.kubevirt.io", "grow", namespace)
    assert [g["deviceName"] for g in vmi["spec"]["domain"]["devices"]["gpus"]] == ["nvidia.com/GRID_K240Q"]
    assert (condition_of(cluster.get("vsvm", "grow", namespace), "RestartRequired") or {}).get("status") != "True"
