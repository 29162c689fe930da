"""Changing a running VM's CPU and memory: live with dynamicScaling and the guest agent, else at the next start."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, guest_agent, simulator_flags, wait_for

from .test_vm_lifecycle import running_vmi_uid, status_of, vm_with, wait_state

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.simulator]


def vmi_of(cluster: Cluster, namespace: str, name: str) -> dict:
    return cluster.get("virtualmachineinstances.kubevirt.io", name, namespace)


def guest_size(cluster: Cluster, namespace: str, name: str) -> tuple[int, str]:
    status = vmi_of(cluster, namespace, name)["status"]
    return status["currentCPUTopology"]["sockets"], status["memory"]["guestCurrent"]


def vm_condition(cluster: Cluster, namespace: str, name: str, kind: str) -> dict | None:
    return condition_of(cluster.get("vsvm", name, namespace), kind)


def agent_connected(cluster: Cluster, namespace: str, name: str) -> bool:
    return condition_of(vmi_of(cluster, namespace, name), "AgentConnected") is not None


def test_dynamic_resize_with_the_guest_agent_is_applied_live(cluster: Cluster, namespace: str) -> None:
    small, large = {"cpu": 2, "memory": "2Gi"}, {"cpu": 4, "memory": "4Gi"}
    cluster.apply(vm_with("elastic", dynamicScaling=True, resources=small), namespace=namespace)
    wait_state(cluster, namespace, "elastic", "Running")
    first = running_vmi_uid(cluster, namespace, "elastic")
    guest_agent(cluster, namespace, "elastic", True)
    wait_for(lambda: agent_connected(cluster, namespace, "elastic"), 30, "the guest agent connected")
    applied = wait_for(lambda: vm_condition(cluster, namespace, "elastic", "Resized"), 30, "Resized")
    assert (applied["status"], applied["message"]) == ("True", "the guest runs with 2 vCPUs and 2Gi")

    cluster.apply(vm_with("elastic", dynamicScaling=True, resources=large), namespace=namespace)
    wait_for(lambda: guest_size(cluster, namespace, "elastic") == (4, "4Gi"), 90, "the guest hotplugged")
    resized = wait_for(
        lambda: (c := vm_condition(cluster, namespace, "elastic", "Resized")) and c["status"] == "True" and c,
        30,
        "Resized True",
    )
    assert resized["message"] == "the guest runs with 4 vCPUs and 4Gi"
    assert vmi_of(cluster, namespace, "elastic")["metadata"]["uid"] == first, "live: the same VMI, no restart"
    assert vm_condition(cluster, namespace, "elastic", "RestartRequired") is None
    assert wait_state(cluster, namespace, "elastic", "Running")


def test_dynamic_resize_without_the_guest_agent_waits_for_a_restart_and_says_so(
    cluster: Cluster, namespace: str
) -> None:
    small, large = {"cpu": 2, "memory": "2Gi"}, {"cpu": 4, "memory": "4Gi"}
    cluster.apply(vm_with("agentless", dynamicScaling=True, resources=small), namespace=namespace)
    wait_state(cluster, namespace, "agentless", "Running")
    first = running_vmi_uid(cluster, namespace, "agentless")
    cluster.apply(vm_with("agentless", dynamicScaling=True, resources=large), namespace=namespace)
    restart = wait_for(lambda: vm_condition(cluster, namespace, "agentless", "RestartRequired"), 30, "RestartRequired")
    assert (restart["status"], restart["reason"]) == ("True", "GuestAgentMissing")
    assert "needs the guest agent" in restart["message"] and "next starts" in restart["message"]
    template = cluster.get("virtualmachines.kubevirt.io", "agentless", namespace)["spec"]["template"]["spec"]
    assert template["domain"]["cpu"]["sockets"] == 2, "KubeVirt does not get the new size while it would hotplug it"
    assert guest_size(cluster, namespace, "agentless") == (2, "2Gi")
    assert vmi_of(cluster, namespace, "agentless")["metadata"]["uid"] == first

    cluster.apply(
        vm_with("agentless", dynamicScaling=True, resources=large, rebootRequestedAt="2026-11-25T15:00:00Z"),
        namespace=namespace,
    )
    wait_for(lambda: running_vmi_uid(cluster, namespace, "agentless") != first, 60, "a new VMI")
    wait_for(lambda: guest_size(cluster, namespace, "agentless") == (4, "4Gi"), 60, "the new size at the start")
    wait_for(
        lambda: vm_condition(cluster, namespace, "agentless", "RestartRequired") is None,
        30,
        "RestartRequired cleared by the start",
    )


def test_a_resize_no_host_can_give_fails_clearly_and_the_vm_keeps_running_as_it_was(
    cluster: Cluster, namespace: str
) -> None:
    # Hosts have 64Gi: 70Gi (within KubeVirt's 4x hotplug headroom of 20Gi) fits on none of them.
    small, huge = {"cpu": 2, "memory": "20Gi"}, {"cpu": 2, "memory": "70Gi"}
    with simulator_flags(cluster, "--migration-unschedulable-timeout-seconds=5"):
        cluster.apply(vm_with("greedy", dynamicScaling=True, resources=small), namespace=namespace)
        before = wait_state(cluster, namespace, "greedy", "Running")
        first = running_vmi_uid(cluster, namespace, "greedy")
        guest_agent(cluster, namespace, "greedy", True)
        wait_for(lambda: agent_connected(cluster, namespace, "greedy"), 30, "the guest agent connected")
        cluster.apply(vm_with("greedy", dynamicScaling=True, resources=huge), namespace=namespace)
        failed = wait_for(
            lambda: (
                (c := vm_condition(cluster, namespace, "greedy", "Resized"))
                and c["reason"] == "InsufficientCapacity"
                and c
            ),
            90,
            "the resize refused",
        )
        assert failed["status"] == "False"
        assert "no host could take the VM with 2 vCPUs and 70Gi" in failed["message"]
        assert "Insufficient memory" in failed["message"], "the scheduler's reason"
        assert f"keeps running as it was, with 2 vCPUs and 20Gi on {before['host']}" in failed["message"]
        vmi = vmi_of(cluster, namespace, "greedy")
        assert vmi["metadata"]["uid"] == first and guest_size(cluster, namespace, "greedy") == (2, "20Gi")
        status = status_of(cluster, namespace, "greedy")
        assert (status["state"], status["host"]) == ("Running", before["host"])
        assert condition_of({"status": status}, "Ready")["status"] == "True"
