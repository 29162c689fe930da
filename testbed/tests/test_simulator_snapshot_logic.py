"""Snapshot and restore decisions (simulator/snapshot.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from virtstack_testbed.simulator.snapshot import parse_duration, plan_restore, plan_snapshot

AT = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def vm(in_progress: str | None = None) -> dict:
    return {
        "metadata": {"name": "v", "namespace": "ns", "uid": "vm-uid"},
        "spec": {
            "runStrategy": "Always",
            "template": {
                "spec": {
                    "volumes": [
                        {"name": "root", "containerDisk": {"image": "x"}},
                        {"name": "data", "dataVolume": {"name": "v-data"}},
                    ]
                }
            },
        },
        "status": {"snapshotInProgress": in_progress} if in_progress else {},
    }


def running_vmi(agent: bool) -> dict:
    conditions = [{"type": "AgentConnected", "status": "True"}] if agent else []
    return {"metadata": {"name": "v"}, "status": {"phase": "Running", "conditions": conditions}}


def snap(phase: str | None = None, created: str = "2026-01-01T11:59:00Z", annotations: dict | None = None) -> dict:
    return {
        "metadata": {
            "name": "s",
            "namespace": "ns",
            "uid": "s-uid",
            "creationTimestamp": created,
            "annotations": annotations or {},
        },
        "spec": {"source": {"name": "v"}},
        "status": {"phase": phase, "virtualMachineSnapshotContentName": "vmsnapshot-content-s-uid"} if phase else {},
    }


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("1m30s", 90), ("300ms", 0.3), ("2h", 7200), ("x", 300)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, timedelta(minutes=5)).total_seconds() == pytest.approx(seconds)


def test_snapshot_steps_lock_freeze_content_complete() -> None:
    start = plan_snapshot(snap(), vm(), running_vmi(agent=True), None, AT)
    assert start.status["phase"] == "InProgress" and start.vm_in_progress == "s" and start.freeze == "frozen"
    assert start.status["indications"] == ["Online", "GuestAgent"]
    assert start.status["snapshotVolumes"] == {"includedVolumes": ["data"], "excludedVolumes": ["root"]}
    content = plan_snapshot(snap("InProgress"), vm("s"), running_vmi(True), None, AT).create_content
    assert content["spec"]["volumeBackups"][0]["volumeSnapshotName"] == "vmsnapshot-vm-uid-volume-data"
    assert content["metadata"]["ownerReferences"][0]["uid"] == "s-uid", "deletionPolicy Delete: owned"
    done = plan_snapshot(snap("InProgress"), vm("s"), running_vmi(True), content, AT)
    assert done.status["phase"] == "Succeeded" and done.status["readyToUse"] and done.content_status["readyToUse"]
    assert done.vm_in_progress is None and done.freeze == "thawed"


def test_snapshot_waits_for_another_and_fails_at_its_deadline() -> None:
    assert plan_snapshot(snap(), vm("other"), None, None, AT).requeue_after == 1.0
    late = plan_snapshot(snap("InProgress", created="2026-01-01T11:50:00Z"), vm("s"), None, None, AT)
    assert late.status["phase"] == "Failed" and late.status["error"]["message"] == "snapshot deadline exceeded"
    assert late.vm_in_progress is None
    held = plan_snapshot(
        snap("InProgress", annotations={"simulator.virtstack.io/snapshot": "fail"}), vm("s"), None, {}, AT
    )
    assert held.status is None and held.requeue_after == pytest.approx(240)


def restore(policy: str, created: str = "2026-01-01T11:59:00Z") -> dict:
    return {
        "metadata": {"name": "r", "creationTimestamp": created},
        "spec": {"target": {"name": "v"}, "virtualMachineSnapshotName": "s", "targetReadinessPolicy": policy},
        "status": {},
    }


READY = {"status": {"readyToUse": True}}
CONTENT = {"spec": {"source": {"virtualMachine": {"spec": {"runStrategy": "Halted"}}}, "volumeBackups": []}}


@pytest.mark.parametrize(
    ("policy", "vmi", "outcome"),
    [
        ("StopTarget", running_vmi(False), "stop"),
        ("FailImmediate", running_vmi(False), "fail"),
        ("WaitGracePeriod", running_vmi(False), "wait"),
        ("WaitEventually", running_vmi(False), "wait"),
        ("WaitGracePeriod", None, "restore"),
    ],
)
def test_restore_needs_the_target_stopped(policy: str, vmi: dict | None, outcome: str) -> None:
    plan = plan_restore(restore(policy), vm(), vmi, READY, CONTENT, AT)
    assert plan.stop_target is (outcome == "stop")
    failed = any(c["type"] == "Failure" for c in (plan.status or {}).get("conditions", []))
    assert failed is (outcome == "fail")
    assert (plan.vm_spec == {"runStrategy": "Halted"}) is (outcome == "restore")
    if outcome == "restore":
        assert plan.status["complete"] is True


def test_wait_grace_period_expires_after_five_minutes() -> None:
    plan = plan_restore(
        restore("WaitGracePeriod", "2026-01-01T11:54:00Z"), vm(), running_vmi(False), READY, CONTENT, AT
    )
    assert any(c["type"] == "Failure" for c in plan.status["conditions"])


def test_a_target_already_carrying_the_restore_completes_it_without_stopping_again() -> None:
    target = vm()
    target["metadata"]["annotations"] = {"restore.kubevirt.io/lastRestoreUID": "r-"}
    plan = plan_restore(restore("StopTarget"), target, running_vmi(False), READY, CONTENT, AT)
    assert not plan.stop_target and plan.vm_spec is None and plan.status["complete"] is True
