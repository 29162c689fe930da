"""The VM controller against the real API server (issue 4 §3): the runStrategy table row by row,
stateChangeRequests, start-failure back-off, RestartRequired, DataVolume templates, printableStatus.
"""

from __future__ import annotations

import json

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import (
    Cluster,
    guest_event,
    kubevirt_vm,
    restart_simulator,
    simulator_flags,
    wait_for,
)

pytestmark = pytest.mark.simulator

FAST = ("--heartbeat-seconds=1", "--heartbeat-timeout-seconds=4", "--backoff-scale=0.05")


@pytest.fixture(scope="module", autouse=True)
def fast_simulator(cluster: Cluster):
    with simulator_flags(cluster, *FAST):
        yield


def vmi_of(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return cluster.get("vmi", name, namespace)


def phase(vmi: dict | None) -> str | None:
    return ((vmi or {}).get("status") or {}).get("phase")


def vm_status(cluster: Cluster, namespace: str, name: str) -> dict:
    return (cluster.get("vm", name, namespace) or {}).get("status") or {}


def wait_running(cluster: Cluster, namespace: str, name: str, other_than: str | None = None) -> dict:
    def running():
        vmi = vmi_of(cluster, namespace, name)
        return phase(vmi) == "Running" and vmi["metadata"]["uid"] != other_than and vmi

    return wait_for(running, 60, f"VMI {name} Running" + (" (a new one)" if other_than else ""))


def set_requests(cluster: Cluster, namespace: str, name: str, requests: list[dict]) -> None:
    """What virtctl start/stop/restart do through the subresource API (not served here)."""
    patch = json.dumps({"status": {"stateChangeRequests": requests}})
    cluster.kubectl(
        "patch", "vm", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", patch, "--field-manager=e2e"
    )


@pytest.mark.parametrize(
    ("strategy", "event", "outcome"),
    [
        ("Always", "shutdown", "restarted"),
        ("Always", "crash", "restarted"),
        ("RerunOnFailure", "shutdown", "deleted"),
        ("RerunOnFailure", "crash", "restarted"),
        ("Once", "shutdown", "kept"),
        ("Once", "crash", "kept"),
        ("Manual", "shutdown", "kept"),
        ("Manual", "crash", "kept"),
    ],
)
def test_run_strategy_table_when_the_vmi_ends(
    cluster: Cluster, namespace: str, strategy: str, event: str, outcome: str
) -> None:
    name = "table"
    cluster.apply(kubevirt_vm(name, strategy), namespace=namespace)
    if strategy == "Manual":
        set_requests(cluster, namespace, name, [{"action": "Start"}])
    first = wait_running(cluster, namespace, name)
    guest_event(cluster, namespace, name, event)
    final = "Succeeded" if event == "shutdown" else "Failed"
    if outcome == "restarted":
        wait_running(cluster, namespace, name, other_than=first["metadata"]["uid"])
    elif outcome == "deleted":
        wait_for(lambda: vmi_of(cluster, namespace, name) is None, 30, "the VMI deleted")
        wait_for(lambda: vm_status(cluster, namespace, name).get("printableStatus") == "Stopped", 30, "VM Stopped")
        assert vmi_of(cluster, namespace, name) is None, "not restarted"
    else:
        wait_for(lambda: phase(vmi_of(cluster, namespace, name)) == final, 30, f"VMI {final}")
        wait_for(lambda: vm_status(cluster, namespace, name).get("printableStatus") == "Stopped", 30, "VM Stopped")
        assert vmi_of(cluster, namespace, name)["metadata"]["uid"] == first["metadata"]["uid"], "left in place"


@pytest.mark.parametrize(("strategy", "recreated"), [("Always", True), ("Once", True), ("RerunOnFailure", False)])
def test_run_strategy_table_when_the_vmi_is_deleted(
    cluster: Cluster, namespace: str, strategy: str, recreated: bool
) -> None:
    cluster.apply(kubevirt_vm("gone", strategy), namespace=namespace)
    first = wait_running(cluster, namespace, "gone")
    cluster.kubectl("delete", "vmi", "gone", "-n", namespace)
    if recreated:
        wait_running(cluster, namespace, "gone", other_than=first["metadata"]["uid"])
    else:
        wait_for(lambda: vm_status(cluster, namespace, "gone").get("printableStatus") == "Stopped", 30, "Stopped")
        assert vmi_of(cluster, namespace, "gone") is None


def test_manual_starts_and_stops_on_state_change_requests(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("manual", "Manual"), namespace=namespace)
    wait_for(lambda: vm_status(cluster, namespace, "manual").get("printableStatus") == "Stopped", 30, "Stopped")
    assert vmi_of(cluster, namespace, "manual") is None, "Manual does not start by itself"
    set_requests(cluster, namespace, "manual", [{"action": "Start"}])
    vmi = wait_running(cluster, namespace, "manual")
    assert "stateChangeRequests" not in vm_status(cluster, namespace, "manual"), "a served Start is removed"
    set_requests(cluster, namespace, "manual", [{"action": "Stop", "uid": vmi["metadata"]["uid"]}])
    wait_for(lambda: vmi_of(cluster, namespace, "manual") is None, 30, "the VMI stopped")
    wait_for(lambda: "stateChangeRequests" not in vm_status(cluster, namespace, "manual"), 30, "Stop removed")
    # virtctl restart: [Stop{uid}, Start]
    set_requests(cluster, namespace, "manual", [{"action": "Start"}])
    vmi = wait_running(cluster, namespace, "manual")
    set_requests(cluster, namespace, "manual", [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, {"action": "Start"}])
    wait_running(cluster, namespace, "manual", other_than=vmi["metadata"]["uid"])
    wait_for(lambda: "stateChangeRequests" not in vm_status(cluster, namespace, "manual"), 30, "both served")


def test_halted_deletes_the_vmi_and_always_starts_it(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("power", "Halted"), namespace=namespace)
    wait_for(lambda: vm_status(cluster, namespace, "power").get("printableStatus") == "Stopped", 30, "Stopped")
    cluster.apply(kubevirt_vm("power", "Always"), namespace=namespace)
    wait_running(cluster, namespace, "power")
    wait_for(lambda: vm_status(cluster, namespace, "power").get("ready") is True, 30, "VM ready")
    cluster.apply(kubevirt_vm("power", "Halted"), namespace=namespace)
    wait_for(lambda: vmi_of(cluster, namespace, "power") is None, 60, "VMI deleted")
    status = wait_for(
        lambda: (s := vm_status(cluster, namespace, "power")).get("printableStatus") == "Stopped" and s, 30, "Stopped"
    )
    assert "created" not in status and "ready" not in status
    assert condition_of({"status": status}, "Ready")["reason"] == "VMINotExists"


def test_start_failures_back_off_show_crash_loop_and_clear_once_running(cluster: Cluster, namespace: str) -> None:
    boot_failure = {"simulator.virtstack.io/guest": "boot-failure"}
    cluster.apply(kubevirt_vm("crashy", "Always", annotations=boot_failure), namespace=namespace)
    wait_for(
        lambda: vm_status(cluster, namespace, "crashy").get("printableStatus") == "CrashLoopBackOff",
        60,
        "CrashLoopBackOff",
        interval=0.2,
    )
    failure = wait_for(
        lambda: (
            (f := vm_status(cluster, namespace, "crashy").get("startFailure", {})).get("consecutiveFailCount", 0) >= 2
            and f
        ),
        60,
        "a second consecutive start failure",
        interval=0.2,
    )
    assert failure["lastFailedVMIUID"] and failure["retryAfterTimestamp"]
    cluster.apply(kubevirt_vm("crashy", "Always"), namespace=namespace)  # the guest boots again
    wait_running(cluster, namespace, "crashy")
    wait_for(lambda: "startFailure" not in vm_status(cluster, namespace, "crashy"), 30, "startFailure cleared")


def test_template_change_needs_a_restart_but_scheduling_fields_apply_live(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("edit"), namespace=namespace)
    vmi = wait_running(cluster, namespace, "edit")
    changed = kubevirt_vm("edit")
    changed["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]["image"] = "quay.io/containerdisks/fedora:42"
    cluster.apply(changed, namespace=namespace)
    restart = wait_for(
        lambda: condition_of(cluster.get("vm", "edit", namespace), "RestartRequired"), 30, "RestartRequired"
    )
    assert restart["status"] == "True" and "reason" not in restart
    assert restart["message"] == "a non-live-updatable field was changed in the template spec"
    current = vmi_of(cluster, namespace, "edit")
    assert current["spec"]["volumes"][0]["containerDisk"]["image"].endswith(":41"), "the VMI is not touched"
    cluster.apply(kubevirt_vm("edit"), namespace=namespace)  # reverted
    wait_for(lambda: condition_of(cluster.get("vm", "edit", namespace), "RestartRequired") is None, 30, "cleared")
    live = kubevirt_vm("edit")
    live["spec"]["template"]["spec"]["nodeSelector"] = {"topology.kubernetes.io/zone": "zone-a"}
    cluster.apply(live, namespace=namespace)
    wait_for(
        lambda: (
            vmi_of(cluster, namespace, "edit")["spec"].get("nodeSelector") == {"topology.kubernetes.io/zone": "zone-a"}
        ),
        30,
        "nodeSelector applied to the running VMI",
    )
    assert condition_of(cluster.get("vm", "edit", namespace), "RestartRequired") is None
    assert vmi_of(cluster, namespace, "edit")["metadata"]["uid"] == vmi["metadata"]["uid"]


def dv_template(name: str, source: dict) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"source": source, "storage": {"resources": {"requests": {"storage": "1Gi"}}}},
    }


def with_data_volume(name: str, source: dict) -> dict:
    vm = kubevirt_vm(name, dataVolumeTemplates=[dv_template(f"{name}-disk", source)])
    spec = vm["spec"]["template"]["spec"]
    spec["domain"]["devices"]["disks"].append({"name": "data", "disk": {"bus": "virtio"}})
    spec["volumes"].append({"name": "data", "dataVolume": {"name": f"{name}-disk"}})
    return vm


def test_data_volume_templates_gate_the_vmi(cluster: Cluster, namespace: str) -> None:
    cluster.apply(with_data_volume("blank", {"blank": {}}), namespace=namespace)
    wait_running(cluster, namespace, "blank")
    dv = cluster.get("datavolumes.cdi.kubevirt.io", "blank-disk", namespace)
    vm = cluster.get("vm", "blank", namespace)
    assert dv["status"]["phase"] == "Succeeded" and dv["status"]["progress"] == "100.0%"
    assert dv["metadata"]["ownerReferences"][0]["uid"] == vm["metadata"]["uid"]
    assert dv["metadata"]["labels"]["kubevirt.io/created-by"] == vm["metadata"]["uid"]

    # A source the CDI stand-in never completes (a registry import): the VM waits, Provisioning.
    cluster.apply(
        with_data_volume("remote", {"registry": {"url": "docker://quay.io/containerdisks/fedora:41"}}),
        namespace=namespace,
    )
    wait_for(
        lambda: vm_status(cluster, namespace, "remote").get("printableStatus") == "Provisioning", 30, "Provisioning"
    )
    assert cluster.get("datavolumes.cdi.kubevirt.io", "remote-disk", namespace) is not None
    assert vmi_of(cluster, namespace, "remote") is None, "no VMI until the DataVolume succeeds"


def test_gpu_vm_beyond_the_hosts_gpus_is_unschedulable(cluster: Cluster, namespace: str) -> None:
    vm = kubevirt_vm("gpus")
    gpus = [{"name": f"gpu{i}", "deviceName": "nvidia.com/GRID_K240Q"} for i in range(3)]
    vm["spec"]["template"]["spec"]["domain"]["devices"]["gpus"] = gpus
    cluster.apply(vm, namespace=namespace)
    wait_for(
        lambda: vm_status(cluster, namespace, "gpus").get("printableStatus") == "ErrorUnschedulable",
        60,
        "ErrorUnschedulable",
    )
    scheduled = condition_of(vmi_of(cluster, namespace, "gpus"), "PodScheduled")
    assert scheduled["reason"] == "Unschedulable" and "Insufficient nvidia.com/GRID_K240Q" in scheduled["message"]


def test_deleting_the_vm_stops_its_vmi_then_lets_go(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("bye"), namespace=namespace)
    wait_running(cluster, namespace, "bye")
    assert (
        "kubevirt.io/virtualMachineControllerFinalize" in cluster.get("vm", "bye", namespace)["metadata"]["finalizers"]
    )
    cluster.kubectl("delete", "vm", "bye", "-n", namespace, "--wait=false")
    wait_for(lambda: cluster.get("vm", "bye", namespace) is None, 60, "VM gone")
    wait_for(lambda: vmi_of(cluster, namespace, "bye") is None, 60, "VMI gone")
    wait_for(lambda: not cluster.list("pods", namespace, "kubevirt.io=virt-launcher"), 60, "launcher pods gone")


def test_restarting_the_simulator_mid_flight_makes_no_duplicates(cluster: Cluster, namespace: str) -> None:
    names = [f"vm-{i}" for i in range(6)]
    cluster.apply(*(kubevirt_vm(n) for n in names), namespace=namespace)
    restart_simulator(cluster, *FAST)
    for name in names:
        wait_running(cluster, namespace, name)
    pods = cluster.list("pods", namespace, "kubevirt.io=virt-launcher")
    owners = sorted(p["metadata"]["labels"]["kubevirt.io/created-by"] for p in pods)
    assert len(owners) == len(set(owners)) == len(names), "one launcher pod per VMI"


def test_missing_pvc_shows_error_pvc_not_found_until_it_appears(cluster: Cluster, namespace: str) -> None:
    vm = kubevirt_vm("claims")
    spec = vm["spec"]["template"]["spec"]
    spec["domain"]["devices"]["disks"].append({"name": "data", "disk": {"bus": "virtio"}})
    spec["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "claims-data"}})
    cluster.apply(vm, namespace=namespace)
    wait_for(
        lambda: vm_status(cluster, namespace, "claims").get("printableStatus") == "ErrorPvcNotFound",
        30,
        "ErrorPvcNotFound",
    )
    assert phase(vmi_of(cluster, namespace, "claims")) == "Pending"
    assert not cluster.list("pods", namespace, "kubevirt.io=virt-launcher")
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "claims-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.apply(claim, namespace=namespace)
    wait_running(cluster, namespace, "claims")
    assert condition_of(vmi_of(cluster, namespace, "claims"), "Synchronized") is None
