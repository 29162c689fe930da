"""The simulator's pure decisions, against KubeVirt's documented behaviour (kubevirt-behaviour.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from virtstack_testbed.simulator.guest import AGENT_ANNOTATION, GUEST_ANNOTATION
from virtstack_testbed.simulator.launcher import launcher_pod, launcher_resources
from virtstack_testbed.simulator.node import HEARTBEAT_ANNOTATION, unresponsive
from virtstack_testbed.simulator.quantity import format_bytes, parse_cpu_millis, parse_quantity
from virtstack_testbed.simulator.vm import Action, printable_status, vm_status, vmi_action, vmi_from_vm
from virtstack_testbed.simulator.vmi import FOREGROUND_FINALIZER, failed_create, plan_vmi


def vm(strategy: str, deleting: bool = False, start_request: bool = False, status_strategy: str | None = None) -> dict:
    meta = {"name": "v", "namespace": "ns", "uid": "vm-uid", "generation": 3}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict = {}
    if start_request:
        status["stateChangeRequests"] = [{"action": "Start"}]
    if status_strategy:
        status["runStrategy"] = status_strategy
    return {
        "metadata": meta,
        "spec": {
            "runStrategy": strategy,
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"domain": {"memory": {"guest": "1Gi"}}}},
        },
        "status": status,
    }


def vmi(phase: str | None, deleting: bool = False) -> dict:
    meta = {"name": "v", "namespace": "ns", "uid": "vmi-uid", "resourceVersion": "1", "creationTimestamp": "t"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"domain": {"memory": {"guest": "1Gi"}}},
        "status": {"phase": phase} if phase else {},
    }


@pytest.mark.parametrize(
    ("strategy", "phase", "expected"),
    [
        # Always: create when missing, delete a final VMI (to recreate it), leave a live one
        ("Always", None, Action.CREATE_VMI),
        ("Always", "Running", Action.NONE),
        ("Always", "Succeeded", Action.DELETE_VMI),
        ("Always", "Failed", Action.DELETE_VMI),
        # Halted: never a VMI
        ("Halted", None, Action.NONE),
        ("Halted", "Running", Action.DELETE_VMI),
        # Once: create when missing, keep final VMIs
        ("Once", None, Action.CREATE_VMI),
        ("Once", "Succeeded", Action.NONE),
        ("Once", "Failed", Action.NONE),
        # Manual: nothing without a Start request, final VMIs kept
        ("Manual", None, Action.NONE),
        ("Manual", "Failed", Action.NONE),
        # RerunOnFailure: final VMIs deleted; a new one only on a start request or strategy change
        ("RerunOnFailure", "Succeeded", Action.DELETE_VMI),
        ("RerunOnFailure", "Failed", Action.DELETE_VMI),
    ],
)
def test_run_strategy_table(strategy: str, phase: str | None, expected: Action) -> None:
    instance = None if phase is None else vmi(phase)
    assert vmi_action(vm(strategy, status_strategy=strategy), instance) is expected


def test_manual_starts_on_a_start_request() -> None:
    assert vmi_action(vm("Manual", start_request=True), None) is Action.CREATE_VMI


def test_rerun_on_failure_starts_when_the_strategy_just_changed() -> None:
    assert vmi_action(vm("RerunOnFailure", status_strategy="Halted"), None) is Action.CREATE_VMI
    assert vmi_action(vm("RerunOnFailure", status_strategy="RerunOnFailure"), None) is Action.NONE


def test_deleting_vm_deletes_its_vmi_and_a_deleting_vmi_is_left_alone() -> None:
    assert vmi_action(vm("Always", deleting=True), vmi("Running")) is Action.DELETE_VMI
    assert vmi_action(vm("Always"), vmi("Running", deleting=True)) is Action.NONE


def test_vmi_from_vm_carries_name_labels_owner_and_finalizer() -> None:
    created = vmi_from_vm(vm("Always"))
    assert created["metadata"]["name"] == "v"
    assert created["metadata"]["labels"] == {"a": "b"}
    assert created["metadata"]["ownerReferences"][0]["uid"] == "vm-uid"
    assert created["metadata"]["annotations"]["kubevirt.io/vm-generation"] == "3"


@pytest.mark.parametrize(
    ("vm_deleting", "vmi_obj", "expected"),
    [
        (True, vmi("Running"), "Terminating"),
        (False, vmi("Running", deleting=True), "Stopping"),
        (False, vmi("Running"), "Running"),
        (False, vmi("Scheduling"), "Starting"),
        (False, None, "Starting"),  # Always with no VMI yet: creation expected
        (False, vmi("Succeeded"), "Stopped"),
    ],
)
def test_printable_status_precedence(vm_deleting: bool, vmi_obj: dict | None, expected: str) -> None:
    assert printable_status(vm("Always", deleting=vm_deleting), vmi_obj) == expected


def test_printable_status_unschedulable() -> None:
    pending = vmi("Scheduling")
    pending["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    assert printable_status(vm("Always"), pending) == "ErrorUnschedulable"


def test_vm_status_without_vmi_reports_vmi_not_exists() -> None:
    status = vm_status(vm("Halted"), None)
    assert status["printableStatus"] == "Stopped"
    assert status["conditions"][0]["reason"] == "VMINotExists"
    assert "ready" not in status and "created" not in status


def pod(node: str | None, phase: str = "Pending", ready: bool = False, ip: str | None = None) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {"name": "virt-launcher-v-abcde", "uid": "pod-uid", "creationTimestamp": "t"},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions, **({"podIP": ip} if ip else {})},
    }


def test_vmi_phases_follow_the_launcher_pod() -> None:
    new = plan_vmi(vmi(None), [])
    assert new.status["phase"] == "Pending" and new.finalizers == [FOREGROUND_FINALIZER]
    assert plan_vmi(vmi("Pending"), []).create_pod
    assert plan_vmi(vmi("Pending"), [pod(None)]).status["phase"] == "Scheduling"
    assert (
        plan_vmi(vmi("Scheduling"), [pod(None)]).status is None
        or plan_vmi(vmi("Scheduling"), [pod(None)]).status["phase"] == "Scheduling"
    )
    scheduled = plan_vmi(vmi("Scheduling"), [pod("host-a", "Running", True, "10.244.0.5")])
    assert scheduled.status["phase"] == "Scheduled" and scheduled.status["nodeName"] == "host-a"
    assert scheduled.labels == {"kubevirt.io/nodeName": "host-a"}
    running_vmi = vmi("Scheduled")
    running_vmi["status"]["nodeName"] = "host-a"
    running = plan_vmi(running_vmi, [pod("host-a", "Running", True, "10.244.0.5")]).status
    assert running["phase"] == "Running"
    assert running["interfaces"][0]["ipAddress"] == "10.244.0.5"
    assert {c["type"]: c["status"] for c in running["conditions"]}["Ready"] == "True"


def test_running_vmi_whose_pod_vanished_fails() -> None:
    running = vmi("Running")
    running["status"]["nodeName"] = "host-a"
    assert plan_vmi(running, []).status["phase"] == "Failed"


def test_deleting_vmi_deletes_its_pod_then_ends_succeeded_and_drops_its_finalizer() -> None:
    deleting = vmi("Running", deleting=True)
    deleting["metadata"]["finalizers"] = [FOREGROUND_FINALIZER]
    assert plan_vmi(deleting, [pod("host-a", "Running", True)]).delete_pods == ["virt-launcher-v-abcde"]
    done = plan_vmi(deleting, [])
    assert done.status["phase"] == "Succeeded" and done.finalizers == []


def test_launcher_resources_as_kubevirt_renders_them() -> None:
    domain = {
        "cpu": {"sockets": 4},
        "memory": {"guest": "2Gi"},
        "devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/GRID_K240Q"}]},
    }
    resources = launcher_resources(domain)
    assert resources["requests"]["cpu"] == "400m"  # vCPUs / cpuAllocationRatio 10
    assert parse_quantity(resources["requests"]["memory"]) > parse_quantity("2Gi")
    assert resources["requests"]["nvidia.com/GRID_K240Q"] == resources["limits"]["nvidia.com/GRID_K240Q"] == "1"


def test_launcher_pod_carries_scheduling_constraints() -> None:
    instance = vmi("Pending")
    instance["spec"].update(
        {"nodeSelector": {"zone": "a"}, "schedulerName": "virtstack-pack", "affinity": {"podAntiAffinity": {}}}
    )
    launcher = launcher_pod(instance)
    assert launcher["metadata"]["generateName"] == "virt-launcher-v-"
    assert launcher["metadata"]["labels"]["kubevirt.io/created-by"] == "vmi-uid"
    assert launcher["spec"]["nodeSelector"] == {"zone": "a", "kubevirt.io/schedulable": "true"}
    assert launcher["spec"]["schedulerName"] == "virtstack-pack"
    assert launcher["spec"]["affinity"] == {"podAntiAffinity": {}}


@pytest.mark.parametrize(("text", "value"), [("1Gi", 2**30), ("512Mi", 2**29), ("1G", 10**9), ("100m", 1)])
def test_parse_quantity_rounds_up(text: str, value: int) -> None:
    assert parse_quantity(text) == value


def test_cpu_and_format() -> None:
    assert parse_cpu_millis("1.5") == 1500 and parse_cpu_millis("250m") == 250
    assert format_bytes(2**30 + 2**29) == "1536Mi"


# --- guest events and node loss (guest.py, node.py) ----------------------------------------------


def running_with(annotations: dict[str, str], phase: str = "Running") -> dict:
    instance = vmi(phase)
    instance["metadata"]["annotations"] = annotations
    instance["status"]["nodeName"] = "host-a"
    return instance


@pytest.mark.parametrize(
    ("phase", "event", "expected"),
    [
        ("Running", "shutdown", "Succeeded"),
        ("Running", "crash", "Failed"),
        ("Running", "boot-failure", None),  # only a VMI that has not started yet can fail to boot
        ("Scheduled", "boot-failure", "Failed"),
        ("Scheduled", "crash", "Running"),  # the guest boots first; the crash comes once it runs
        ("Running", "reboot", None),  # unknown values are ignored
    ],
)
def test_guest_events(phase: str, event: str, expected: str | None) -> None:
    plan = plan_vmi(running_with({GUEST_ANNOTATION: event}, phase), [pod("host-a", "Running", True, "10.0.0.1")])
    assert (plan.status or {}).get("phase") == expected or (expected is None and plan.status["phase"] == phase)


def test_agent_connected_present_only_with_the_agent() -> None:
    launcher = [pod("host-a", "Running", True, "10.0.0.1")]
    with_agent = plan_vmi(running_with({AGENT_ANNOTATION: "true"}), launcher).status["conditions"]
    without = plan_vmi(running_with({}), launcher).status["conditions"]
    assert {"type": "AgentConnected", "status": "True"}.items() <= next(
        c for c in with_agent if c["type"] == "AgentConnected"
    ).items()
    assert all(c["type"] != "AgentConnected" for c in without)


@pytest.mark.parametrize(
    ("node_unresponsive", "pods", "expected"),
    [
        (True, [], ("Failed", "NodeUnresponsive")),
        (False, [], ("Failed", "PodNotExists")),
        (True, [pod("host-a", "Running", True)], ("Running", None)),  # a live pod keeps it running
    ],
)
def test_node_loss_rule(node_unresponsive: bool, pods: list[dict], expected: tuple) -> None:
    instance = running_with({})
    status = plan_vmi(instance, pods, node_unresponsive=node_unresponsive).status or instance["status"]
    assert (status["phase"], status.get("reason")) == expected


def test_terminating_pod_counts_as_live_on_a_lost_node() -> None:
    terminating = pod("host-a", "Running", True)
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = plan_vmi(running_with({}), [terminating], node_unresponsive=True).status
    assert status["phase"] == "Running"
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["reason"] == "PodTerminating"


@pytest.mark.parametrize(
    ("beat", "expected"),
    [(None, False), ("2026-01-01T00:00:00Z", True), ("2026-01-01T00:04:59Z", False), ("garbage", False)],
)
def test_unresponsive_after_the_heartbeat_timeout(beat: str | None, expected: bool) -> None:
    node = {"metadata": {"name": "n", "annotations": {HEARTBEAT_ANNOTATION: beat} if beat else {}}}
    at = datetime(2026, 1, 1, 0, 5, 1, tzinfo=UTC)
    assert unresponsive(node, at, timeout=300) is expected


def test_a_missing_pvc_holds_the_launcher_pod_with_failed_pvc_not_found() -> None:
    waiting = vmi("Pending")
    waiting["spec"]["volumes"] = [{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}]
    plan = plan_vmi(waiting, [], missing_claims=("nope",))
    assert not plan.create_pod
    synchronized = next(c for c in plan.status["conditions"] if c["type"] == "Synchronized")
    assert (synchronized["status"], synchronized["reason"]) == ("False", "FailedPvcNotFound")
    assert synchronized["message"] == "PVC ns/nope does not exist, waiting for it to appear"
    assert plan_vmi(waiting, []).create_pod, "once it exists, the pod is created"


def test_a_refused_launcher_pod_is_a_failed_create_sync_error_until_a_sync_succeeds() -> None:
    pending = vmi("Pending")
    plan = plan_vmi(pending, [])
    refused = 'pods "virt-launcher-v-x" is forbidden: exceeded quota: gpus, requested: requests.a/b=1'
    status = failed_create(pending, plan.status, refused)
    synchronized = next(c for c in status["conditions"] if c["type"] == "Synchronized")
    assert (synchronized["status"], synchronized["reason"]) == ("False", "FailedCreate")
    assert synchronized["message"] == f"failed to create virtual machine pod: {refused}"
    assert status["phase"] == "Pending"
    retried = {**pending, "status": status}
    assert failed_create(retried, None, refused) == status, "the same refusal again writes nothing"
    created = plan_vmi(retried, [pod(None)]).status
    assert "Synchronized" not in {c["type"] for c in created["conditions"]}, "a sync without error drops it"
