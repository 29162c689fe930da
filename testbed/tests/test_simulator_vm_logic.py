"""The VM controller's pure decisions (simulator/vm.py, cdi.py), table by table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from virtstack_testbed.simulator.vm import (
    Action,
    plan_vm,
    printable_status,
    restart_required,
    start_failure,
    start_failure_delay,
    trim_requests,
    vmi_action,
    vmi_from_vm,
)

AT = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def vm(strategy: str = "Always", status: dict | None = None, **spec) -> dict:
    return {
        "metadata": {"name": "v", "namespace": "ns", "uid": "vm-uid", "generation": 2, "resourceVersion": "1"},
        "spec": {
            "runStrategy": strategy,
            "template": {"spec": {"domain": {"memory": {"guest": "1Gi"}}, "volumes": []}},
            **spec,
        },
        "status": status or {"runStrategy": strategy},
    }


def vmi(phase: str | None, uid: str = "vmi-1", ran: bool = False, deleting: bool = False) -> dict:
    status: dict = {"phase": phase} if phase else {}
    status["phaseTransitionTimestamps"] = [{"phase": "Running"}] if ran else [{"phase": "Scheduled"}]
    meta = {"name": "v", "namespace": "ns", "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"domain": {}}, "status": status}


STOP_1 = {"action": "Stop", "uid": "vmi-1"}
START = {"action": "Start"}


@pytest.mark.parametrize(
    ("strategy", "requests", "instance", "expected"),
    [
        ("Always", [STOP_1], vmi("Running"), Action.DELETE_VMI),  # a restart: stop, then Always starts
        ("Once", [STOP_1], vmi("Running"), Action.DELETE_VMI),
        ("Once", [], vmi("Running"), Action.NONE),
        ("Manual", [STOP_1], vmi("Running"), Action.DELETE_VMI),
        ("Manual", [{"action": "Stop", "uid": "other"}], vmi("Running"), Action.NONE),
        ("Manual", [START], None, Action.CREATE_VMI),
        ("Manual", [STOP_1, START], vmi("Succeeded"), Action.DELETE_VMI),
        ("RerunOnFailure", [START], None, Action.CREATE_VMI),
        ("RerunOnFailure", [STOP_1], vmi("Running"), Action.DELETE_VMI),
        ("Halted", [], vmi("Running", deleting=True), Action.NONE),  # already going
    ],
)
def test_state_change_requests(strategy: str, requests: list, instance: dict | None, expected: Action) -> None:
    assert vmi_action(vm(strategy, {"runStrategy": strategy, "stateChangeRequests": requests}), instance) is expected


@pytest.mark.parametrize(
    ("requests", "instance", "left"),
    [
        ([STOP_1, START], vmi("Running"), [STOP_1, START]),  # not served yet
        ([STOP_1, START], None, [START]),  # stopped
        ([STOP_1, START], vmi("Running", uid="vmi-2"), [START]),  # another VMI: the stop was served
        ([{"action": "Stop"}], vmi("Running"), []),  # a Stop without uid cannot be acted on
        ([START], None, [START]),
        ([START], vmi("Running", deleting=True), [START]),  # the old VMI still going
        ([START], vmi("Pending"), []),
        ([], None, []),
    ],
)
def test_requests_are_trimmed_one_at_a_time_once_served(requests: list, instance: dict | None, left: list) -> None:
    assert trim_requests(vm("Manual", {"stateChangeRequests": requests}), instance) == left


@pytest.mark.parametrize(
    ("count", "jitter", "seconds"),
    [(1, 0.0, 10), (1, 0.99, 15), (2, 0.0, 40), (3, 0.0, 90), (5, 0.0, 250), (6, 0.0, 300), (9, 0.99, 300)],
)
def test_start_failure_delay_is_10s_times_count_squared_with_jitter_capped(count: int, jitter: float, seconds: int):
    assert start_failure_delay(count, jitter) == seconds
    assert start_failure_delay(count, jitter, scale=0.1) == pytest.approx(seconds * 0.1)


def test_start_failure_counts_vmis_that_never_ran_and_clears_once_one_runs() -> None:
    first = start_failure(vm(), vmi("Failed"), AT, jitter=0.0)
    assert first == {
        "consecutiveFailCount": 1,
        "lastFailedVMIUID": "vmi-1",
        "retryAfterTimestamp": "2026-01-01T12:00:10Z",
    }
    again = vm(status={"startFailure": first})
    assert start_failure(again, vmi("Failed"), AT, 0.0) == first, "the same VMI is counted once"
    assert start_failure(again, vmi("Failed", uid="vmi-2"), AT, 0.0)["consecutiveFailCount"] == 2
    assert start_failure(again, vmi("Failed", ran=True), AT, 0.0) == first, "a crash after running is no start failure"
    assert start_failure(again, vmi("Running", ran=True), AT, 0.0) is None
    assert start_failure(vm("Manual", {"startFailure": first}), vmi("Failed"), AT, 0.0) is None, "Manual: no back-off"


def test_plan_waits_out_the_back_off_then_creates() -> None:
    failure = {"consecutiveFailCount": 1, "lastFailedVMIUID": "vmi-1", "retryAfterTimestamp": "2026-01-01T12:00:10Z"}
    waiting = plan_vm(vm(status={"startFailure": failure}), None, {}, None, AT)
    assert waiting.action is Action.NONE and waiting.requeue_after == 10
    assert waiting.status["printableStatus"] == "CrashLoopBackOff"
    later = plan_vm(vm(status={"startFailure": failure}), None, {}, None, datetime(2026, 1, 1, 12, 0, 11, tzinfo=UTC))
    assert later.action is Action.CREATE_VMI and later.status["printableStatus"] == "Starting"


def test_rerun_on_failure_deletes_a_failed_vmi_and_asks_for_a_start() -> None:
    plan = plan_vm(vm("RerunOnFailure"), vmi("Failed", ran=True), {}, None, AT)
    assert plan.action is Action.DELETE_VMI and plan.delete_uid == "vmi-1"
    assert plan.status["stateChangeRequests"] == [START]
    succeeded = plan_vm(vm("RerunOnFailure"), vmi("Succeeded", ran=True), {}, None, AT)
    assert succeeded.action is Action.DELETE_VMI and "stateChangeRequests" not in succeeded.status


def dv(phase: str | None, running: dict | None = None) -> dict:
    status: dict = {"phase": phase} if phase else {}
    if running:
        status["conditions"] = [{"type": "Running", **running}]
    return {"metadata": {"name": "disk"}, "status": status}


TEMPLATE = [{"metadata": {"name": "disk"}, "spec": {"source": {"blank": {}}}}]


def test_data_volume_templates_are_created_owned_and_gate_the_vmi() -> None:
    plan = plan_vm(vm(dataVolumeTemplates=TEMPLATE), None, {}, None, AT)
    [created] = plan.create_dvs
    assert created["metadata"]["name"] == "disk" and created["metadata"]["ownerReferences"][0]["uid"] == "vm-uid"
    assert created["metadata"]["labels"]["kubevirt.io/created-by"] == "vm-uid"
    assert plan.action is Action.NONE and plan.status["printableStatus"] == "Provisioning"
    ready = plan_vm(vm(dataVolumeTemplates=TEMPLATE), None, {"disk": dv("Succeeded")}, None, AT)
    assert ready.action is Action.CREATE_VMI and not ready.create_dvs


def running_vmi(**conditions_and_status) -> dict:
    instance = vmi("Running", ran=True)
    instance["status"].update(conditions_and_status)
    return instance


def cond(kind: str, status: str, reason: str | None = None) -> dict:
    return {"type": kind, "status": status, **({"reason": reason} if reason else {})}


@pytest.mark.parametrize(
    ("instance", "dvs", "expected"),
    [
        (running_vmi(migrationState={"startTimestamp": "t"}), {}, "Migrating"),
        (running_vmi(migrationState={"startTimestamp": "t", "endTimestamp": "t"}), {}, "Running"),
        (running_vmi(conditions=[cond("Paused", "True", "PausedByUser")]), {}, "Paused"),
        (running_vmi(), {"disk": dv("Failed")}, "Running"),  # Running wins over DataVolume errors
        (vmi("Pending"), {"disk": dv("ImportInProgress", {"status": "False", "reason": "Error"})}, "DataVolumeError"),
        (None, {"disk": dv("ImportInProgress")}, "Provisioning"),
        (None, {"disk": dv("WaitForFirstConsumer")}, "Starting"),
        (
            {
                **vmi("Pending"),
                "status": {"phase": "Pending", "conditions": [cond("Synchronized", "False", "ErrImagePull")]},
            },
            {"disk": dv("Succeeded")},
            "ErrImagePull",
        ),
        (
            {"metadata": {"uid": "u"}, "status": {"conditions": [cond("Synchronized", "False", "FailedPvcNotFound")]}},
            {},
            "ErrorPvcNotFound",
        ),
        (vmi("Scheduling") | {"status": {"phase": "Scheduling"}}, {"disk": dv("Succeeded")}, "Starting"),
        (None, {}, "Provisioning"),  # a template DataVolume not created yet
    ],
)
def test_printable_status_full_precedence(instance: dict | None, dvs: dict, expected: str) -> None:
    machine = vm(dataVolumeTemplates=TEMPLATE)
    assert printable_status(machine, instance, dvs, creating=instance is None and expected == "Starting") == expected


def test_crash_loop_back_off_only_for_strategies_that_back_off() -> None:
    failure = {"consecutiveFailCount": 2}
    assert printable_status(vm("Once"), vmi("Failed"), creating=False, failure=failure) == "CrashLoopBackOff"
    assert printable_status(vm("Manual"), vmi("Failed"), creating=False, failure=failure) == "Stopped"
    assert printable_status(vm("Always"), vmi("Pending"), creating=False, failure=failure) == "Starting"


def test_restart_required_ignores_fields_applied_live() -> None:
    started = vm()["spec"]
    changed = vm()
    changed["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert not restart_required(changed, started)
    changed["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = "2Gi"
    assert not restart_required(changed, started), "guest memory is hotplugged"
    changed["spec"]["template"]["spec"]["domain"]["machine"] = {"type": "q35"}
    assert restart_required(changed, started)
    assert not restart_required(changed, None), "no VMI, nothing to restart"
    plan = plan_vm(changed, vmi("Running", ran=True), {}, started, AT)
    restart = next(c for c in plan.status["conditions"] if c["type"] == "RestartRequired")
    assert restart["status"] == "True" and "reason" not in restart and plan.vmi_spec_patch is None


def test_live_update_patches_the_running_vmi() -> None:
    changed = vm()
    changed["spec"]["template"]["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    plan = plan_vm(changed, vmi("Running", ran=True), {}, vm()["spec"], AT)
    assert plan.vmi_spec_patch == {"tolerations": [{"key": "k", "operator": "Exists"}]}


def test_vmi_carries_a_stable_firmware_uuid_and_its_revision() -> None:
    created = vmi_from_vm(vm())
    assert created["spec"]["domain"]["firmware"]["uuid"] == vmi_from_vm(vm())["spec"]["domain"]["firmware"]["uuid"]
    assert created["status"]["virtualMachineRevisionName"] == "revision-start-vm-vm-uid-2"
