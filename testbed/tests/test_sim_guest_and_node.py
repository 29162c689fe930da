"""Guest and host events injected by tests (issue 4 §5), against the real API server and scheduler.

Guest events are annotations on the VMI (simulator/guest.py); node loss is a kwok stopped by the
plane. The simulator runs with short heartbeat timings here so that node loss takes seconds.
"""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import (
    Cluster,
    guest_agent,
    guest_event,
    kubevirt_vm,
    simulator_flags,
    wait_for,
)

pytestmark = pytest.mark.simulator

FAST = ("--heartbeat-seconds=1", "--heartbeat-timeout-seconds=4", "--backoff-scale=0.05")


@pytest.fixture(scope="module", autouse=True)
def fast_simulator(cluster: Cluster):
    with simulator_flags(cluster, *FAST):
        yield


def phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    vmi = cluster.get("vmi", name, namespace)
    return (vmi or {}).get("status", {}).get("phase")


def running_vmi(cluster: Cluster, namespace: str, name: str) -> dict:
    return wait_for(
        lambda: (v := cluster.get("vmi", name, namespace)) and v.get("status", {}).get("phase") == "Running" and v,
        60,
        f"VMI {name} Running",
    )


def printable(cluster: Cluster, namespace: str, name: str) -> str | None:
    return ((cluster.get("vm", name, namespace) or {}).get("status") or {}).get("printableStatus")


def test_guest_shutdown_ends_the_vmi_succeeded_and_its_pod_goes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("once", "Once"), namespace=namespace)
    vmi = running_vmi(cluster, namespace, "once")
    guest_event(cluster, namespace, "once", "shutdown")
    wait_for(lambda: phase(cluster, namespace, "once") == "Succeeded", 30, "VMI Succeeded after guest shutdown")
    wait_for(lambda: printable(cluster, namespace, "once") == "Stopped", 30, "VM Stopped")
    selector = f"kubevirt.io/created-by={vmi['metadata']['uid']}"
    wait_for(lambda: not cluster.list("pods", namespace, selector), 30, "launcher pod gone")
    assert cluster.get("vmi", "once", namespace)["metadata"]["uid"] == vmi["metadata"]["uid"], "Once keeps it"


def test_guest_crash_fails_the_vmi_and_always_starts_a_new_one(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("always"), namespace=namespace)
    first = running_vmi(cluster, namespace, "always")
    guest_event(cluster, namespace, "always", "crash")

    def replaced() -> bool:
        vmi = cluster.get("vmi", "always", namespace)
        return bool(vmi) and vmi["metadata"]["uid"] != first["metadata"]["uid"] and vmi["status"].get("phase")

    wait_for(replaced, 60, "a new VMI (same name, new uid)")
    running_vmi(cluster, namespace, "always")
    vm = cluster.get("vm", "always", namespace)
    assert "startFailure" not in vm["status"], "a VMI that ran is not a start failure"


def test_guest_agent_connects_and_its_condition_is_removed_when_it_goes(cluster: Cluster, namespace: str) -> None:
    annotations = {"simulator.virtstack.io/guest-agent": "true"}
    cluster.apply(kubevirt_vm("agent", annotations=annotations), namespace=namespace)
    running_vmi(cluster, namespace, "agent")
    wait_for(
        lambda: (condition_of(cluster.get("vm", "agent", namespace), "AgentConnected") or {}).get("status") == "True",
        30,
        "AgentConnected=True mirrored on the VM",
    )
    guest_agent(cluster, namespace, "agent", connected=False)
    wait_for(
        lambda: (
            condition_of(cluster.get("vmi", "agent", namespace), "AgentConnected") is None
            and condition_of(cluster.get("vm", "agent", namespace), "AgentConnected") is None
        ),
        30,
        "AgentConnected removed (not False) from VMI and VM",
    )
    guest_agent(cluster, namespace, "agent", connected=True)
    wait_for(lambda: condition_of(cluster.get("vmi", "agent", namespace), "AgentConnected"), 30, "agent back")


def node_label(cluster: Cluster, node: str) -> str | None:
    return cluster.get("node", node)["metadata"]["labels"].get("kubevirt.io/schedulable")


def test_node_loss_fails_the_vmi_only_once_its_pod_is_gone(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("lost", "Once"), namespace=namespace)
    vmi = running_vmi(cluster, namespace, "lost")
    node = vmi["status"]["nodeName"]
    [pod] = cluster.list("pods", namespace, f"kubevirt.io/created-by={vmi['metadata']['uid']}")
    cluster.plane.fail_node(node)
    try:
        wait_for(lambda: node_label(cluster, node) == "false", 120, f"{node} marked kubevirt.io/schedulable=false")
        assert phase(cluster, namespace, "lost") == "Running", "an unresponsive node alone does not fail the VMI"
        cluster.kubectl("delete", "pod", "-n", namespace, pod["metadata"]["name"], "--force", "--grace-period=0")
        wait_for(lambda: phase(cluster, namespace, "lost") == "Failed", 30, "VMI Failed once its pod is gone")
        assert cluster.get("vmi", "lost", namespace)["status"]["reason"] == "NodeUnresponsive"
    finally:
        cluster.plane.recover_node(node)
    wait_for(lambda: node_label(cluster, node) == "true", 120, f"{node} beating and schedulable again")
