"""Migration's pure decisions (simulator/migration.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from virtstack_testbed.simulator.migration import live_migratable, plan_migration, refusal, target_pod

AT = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def vmi(phase: str = "Running", node: str = "host-a", **spec) -> dict:
    return {
        "metadata": {"name": "v", "namespace": "ns", "uid": "vmi-uid", "annotations": {}},
        "spec": {"nodeSelector": {"zone": "a"}, "domain": {"devices": {}}, **spec},
        "status": {"phase": phase, "nodeName": node, "conditions": []},
    }


def vmim(phase: str | None = None, uid: str = "m1", created: str = "2026-01-01T11:00:00Z", **spec) -> dict:
    return {
        "metadata": {"name": uid, "namespace": "ns", "uid": uid, "creationTimestamp": created},
        "spec": {"vmiName": "v", **spec},
        "status": {"phase": phase} if phase else {},
    }


def pod(name: str, node: str | None, phase: str = "Running", job: str | None = None, unschedulable: bool = False):
    labels = {"kubevirt.io/created-by": "vmi-uid", **({"kubevirt.io/migrationJobUID": job} if job else {})}
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}] if unschedulable else []
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": "2026-01-01T11:59:00Z"},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions, "podIP": "10.0.0.9"},
    }


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            {"domain": {"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/X"}]}}},
            "HostDeviceNotLiveMigratable",
        ),
        ({"domain": {"devices": {"hostDevices": [{"name": "h", "deviceName": "x/y"}]}}}, "HostDeviceNotLiveMigratable"),
        ({"volumes": [{"name": "d", "dataVolume": {"name": "disk"}}]}, "DisksNotLiveMigratable"),
        (
            {
                "domain": {"devices": {"interfaces": [{"name": "default", "bridge": {}}]}},
                "networks": [{"name": "default", "pod": {}}],
            },
            "InterfaceNotLiveMigratable",
        ),
        ({"volumes": [{"name": "r", "containerDisk": {"image": "x"}}]}, None),
    ],
)
def test_live_migratable(spec: dict, reason: str | None) -> None:
    condition = live_migratable({"spec": spec})
    assert condition.get("reason") == reason and condition["status"] == ("True" if reason is None else "False")
    assert "reason" not in condition or condition["message"]


def test_shared_claims_are_migratable() -> None:
    spec = {"volumes": [{"name": "d", "dataVolume": {"name": "disk"}}]}
    assert live_migratable({"spec": spec}, frozenset({"disk"}))["status"] == "True"


def test_refusals() -> None:
    assert refusal(vmim(), None, [])[0] == "VMINotFound"
    assert refusal(vmim(), vmi("Succeeded"), [])[1] == "Cannot migrate VMI in finalized state."
    assert refusal(vmim(), vmi("Scheduling"), [])[0] == "VMINotRunning"
    blocked = vmi()
    blocked["status"]["conditions"] = [
        {"type": "LiveMigratable", "status": "False", "reason": "DisksNotLiveMigratable", "message": "m"}
    ]
    assert refusal(vmim(), blocked, [])[1] == "Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: m"
    older = vmim("Running", uid="m0", created="2026-01-01T10:00:00Z")
    assert refusal(vmim(), vmi(), [older])[0] == "MigrationInFlight"
    assert refusal(vmim(), vmi(), [vmim("Succeeded", uid="m0")]) is None


def test_target_pod_keeps_off_the_source_and_merges_the_added_selector() -> None:
    pod_ = target_pod(vmi(), vmim(addedNodeSelector={"zone": "b", "rack": "7"}))
    assert pod_["spec"]["nodeSelector"] == {"rack": "7", "zone": "a", "kubevirt.io/schedulable": "true"}
    [term] = pod_["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchExpressions"][0]["values"] == ["vmi-uid"]
    assert pod_["metadata"]["labels"]["kubevirt.io/migrationJobUID"] == "m1"
    assert pod_["metadata"]["name"] == target_pod(vmi(), vmim())["metadata"]["name"], "deterministic"


def test_phases_step_by_step() -> None:
    source = pod("src", "host-a")
    assert plan_migration(vmim(), vmi(), [source], [], AT).vmim_status["phase"] == "Pending"
    pending = plan_migration(vmim("Pending"), vmi(), [source], [], AT)
    assert pending.create_pod is not None and pending.vmim_status["phase"] == "Scheduling"
    target = pod("tgt", "host-b", job="m1")
    scheduled = plan_migration(vmim("Scheduling"), vmi(), [source, target], [], AT)
    assert scheduled.vmim_status["phase"] == "Scheduled"
    handoff = plan_migration(vmim("Scheduled"), vmi(), [source, target], [], AT)
    state = handoff.vmi_status["migrationState"]
    assert (state["sourceNode"], state["sourcePod"], state["targetNode"], state["targetPod"]) == (
        "host-a",
        "src",
        "host-b",
        "tgt",
    )
    assert handoff.vmim_status["phase"] == "Running" and "nodeName" not in handoff.vmi_status
    migrating = vmi()
    migrating["status"]["migrationState"] = state
    done = plan_migration(vmim("Running"), migrating, [source, target], [], AT)
    assert done.vmi_status["nodeName"] == "host-b" and done.vmi_status["migrationState"]["completed"] is True
    assert done.delete_pods == ["src"] and done.vmim_status["phase"] == "Succeeded"


def test_unschedulable_target_waits_then_fails() -> None:
    target = pod("tgt", None, phase="Pending", job="m1", unschedulable=True)
    waiting = plan_migration(vmim("Scheduling"), vmi(), [target], [], AT, unschedulable_timeout=300)
    assert waiting.vmim_status is None and waiting.requeue_after == 240
    failed = plan_migration(vmim("Scheduling"), vmi(), [target], [], AT, unschedulable_timeout=30)
    assert failed.vmim_status["phase"] == "Failed"
    assert failed.vmim_status["conditions"][0]["reason"] == "TargetPodUnschedulable"
    cleanup = plan_migration(vmim("Failed"), vmi(), [target], [], AT)
    assert cleanup.delete_pods == ["tgt"]
