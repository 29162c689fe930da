"""A virtstack VirtualMachine becomes a KubeVirt VM the operator owns, and reports Running from real placement."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

pytestmark = pytest.mark.usefixtures("operator")


def vsvm(name: str, state: str = "Running") -> dict:
    return {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "state": state,
            "resources": {"cpu": 2, "memory": "2Gi"},
            "source": {"template": {"image": "quay.io/containerdisks/fedora:41"}},
        },
    }


def test_vm_reaches_running_with_ready_condition_host_and_ip(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("web-1"), namespace=namespace)

    def running() -> dict | None:
        vm = cluster.get("vsvm", "web-1", namespace)
        ready = condition_of(vm, "Ready")
        return vm if ready and ready["status"] == "True" and vm["status"].get("state") == "Running" else None

    waited = cluster.kubectl("wait", "--for=condition=Ready", "vsvm/web-1", "-n", namespace, "--timeout=60s")
    assert "condition met" in waited.stdout
    vm = wait_for(running, 60, "vsvm web-1 Running and Ready")
    status = vm["status"]
    assert status["observedGeneration"] == vm["metadata"]["generation"]
    assert condition_of(vm, "Ready")["observedGeneration"] == vm["metadata"]["generation"]
    nodes = {node["metadata"]["name"] for node in cluster.list("nodes")}
    assert status["host"] in nodes
    assert status["ipAddresses"] and status["ipAddresses"][0].count(".") == 3

    kubevirt_vm = cluster.get("virtualmachines.kubevirt.io", "web-1", namespace)
    owner = kubevirt_vm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "VirtualMachine",
        "web-1",
        vm["metadata"]["uid"],
        True,
    )
    assert kubevirt_vm["metadata"]["labels"]["virtstack.io/vm"] == "web-1"
    assert kubevirt_vm["status"]["printableStatus"] == "Running"
    assert kubevirt_vm["spec"]["template"]["spec"]["domain"]["cpu"]["sockets"] == 2

    vmi = cluster.get("virtualmachineinstances.kubevirt.io", "web-1", namespace)
    assert vmi["status"]["phase"] == "Running"
    assert vmi["status"]["nodeName"] == status["host"]
    pods = cluster.list("pods", namespace, selector=f"kubevirt.io/created-by={vmi['metadata']['uid']}")
    assert [pod["spec"]["nodeName"] for pod in pods] == [status["host"]], "the real scheduler placed the launcher pod"
    assert pods[0]["status"]["podIP"] == status["ipAddresses"][0]

    events = cluster.list("events.events.k8s.io", namespace)
    reasons = [
        e["reason"]
        for e in events
        if e["regarding"]["name"] == "web-1"
        and e["regarding"]["kind"] == "VirtualMachine"
        and e["reportingController"] == "virtstack.io/operator"
    ]
    assert "Running" in reasons, f"an Event for the transition to Running; saw {reasons}"


def test_vm_created_stopped_does_not_start_and_is_ready_as_stopped(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("quiet", state="Stopped"), namespace=namespace)

    def stopped() -> dict | None:
        vm = cluster.get("vsvm", "quiet", namespace)
        ready = condition_of(vm, "Ready")
        return vm if ready and ready["status"] == "True" and vm["status"]["state"] == "Stopped" else None

    wait_for(stopped, 60, "vsvm quiet Stopped and Ready")
    assert cluster.get("virtualmachines.kubevirt.io", "quiet", namespace)["spec"]["runStrategy"] == "Halted"
    assert cluster.get("virtualmachineinstances.kubevirt.io", "quiet", namespace) is None


def test_stop_then_start_follows_the_spec(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("toggle"), namespace=namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "toggle", namespace) or {}).get("status", {}).get("state") == "Running",
        60,
        "toggle Running",
    )
    cluster.apply(vsvm("toggle", state="Stopped"), namespace=namespace)
    wait_for(
        lambda: cluster.get("virtualmachineinstances.kubevirt.io", "toggle", namespace) is None,
        60,
        "the VMI deleted after stop",
    )
    stopped = wait_for(lambda: _state_is(cluster, namespace, "toggle", "Stopped"), 60, "toggle Stopped")
    assert not stopped["status"].get("host")
    cluster.apply(vsvm("toggle"), namespace=namespace)
    wait_for(lambda: _state_is(cluster, namespace, "toggle", "Running"), 60, "toggle Running again")


def test_deleting_the_vm_removes_its_kubevirt_objects(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("gone"), namespace=namespace)
    wait_for(lambda: _state_is(cluster, namespace, "gone", "Running"), 60, "gone Running")
    cluster.kubectl("delete", "vsvm", "gone", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: cluster.get("virtualmachines.kubevirt.io", "gone", namespace) is None,
        60,
        "the KubeVirt VM garbage-collected",
    )
    wait_for(lambda: cluster.get("virtualmachineinstances.kubevirt.io", "gone", namespace) is None, 60, "the VMI gone")
    wait_for(lambda: not cluster.list("pods", namespace), 60, "the launcher pod gone")


def _state_is(cluster: Cluster, namespace: str, name: str, state: str) -> dict | None:
    vm = cluster.get("vsvm", name, namespace)
    return vm if vm and vm.get("status", {}).get("state") == state else None
