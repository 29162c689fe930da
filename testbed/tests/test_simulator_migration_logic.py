"""Migration's pure decisions (simulator/migration.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from virtstack_testbed.simulator.hotplug import hotplug_defaults, pending_changes, plan_hotplug, workload_update
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


# --- hotplug (simulator/hotplug.py) ------------------------------------------------------------


def hot_vmi(sockets: int = 2, guest: str = "2Gi", max_sockets: int | None = 8, max_guest: str | None = "8Gi") -> dict:
    cpu = {"sockets": sockets, **({"maxSockets": max_sockets} if max_sockets else {})}
    memory = {"guest": guest, **({"maxGuest": max_guest} if max_guest else {})}
    return {
        "metadata": {"name": "v", "namespace": "ns", "uid": "u"},
        "spec": {"domain": {"cpu": cpu, "memory": memory}},
        "status": {"phase": "Running", "memory": {"guestAtBoot": "2Gi"}},
    }


def template(sockets: int = 2, guest: str = "2Gi") -> dict:
    return {"domain": {"cpu": {"sockets": sockets}, "memory": {"guest": guest}}}


@pytest.mark.parametrize(
    ("want", "migratable", "patch", "restart"),
    [
        (template(4), True, {"cpu": {"sockets": 4}}, None),
        (template(4), False, {"cpu": {"sockets": 4}}, None),  # the CPU path does not check migratability
        (template(1), True, None, "Reduction of CPU socket count requires a restart"),
        (template(9), True, None, "CPU sockets updated in template spec to a value higher than what's available"),
        (template(guest="4Gi"), True, {"memory": {"guest": "4Gi"}}, None),
        (template(guest="4Gi"), False, None, "Memory hotplug is not allowed: the VMI is not live-migratable"),
        (template(guest="16Gi"), True, None, "Memory updated in template spec to a value higher than what's available"),
        (template(guest="1Gi"), True, None, "Memory hotplug: the guest memory cannot be reduced below its boot value"),
        (template(), True, None, None),
    ],
)
def test_plan_hotplug(want: dict, migratable: bool, patch: dict | None, restart: str | None) -> None:
    assert plan_hotplug(want, hot_vmi(), migratable) == (patch, restart)


def test_hotplug_defaults_follow_kubevirt() -> None:
    spec = hotplug_defaults({"domain": {"cpu": {"sockets": 2, "cores": 2}, "memory": {"guest": "1Gi"}}})
    assert spec["domain"]["cpu"]["maxSockets"] == 8 and spec["domain"]["memory"]["maxGuest"] == "4Gi"
    small = hotplug_defaults({"domain": {"memory": {"guest": "512Mi"}}})
    assert "maxGuest" not in small["domain"]["memory"], "no memory hotplug below 1 GiB"
    wide = hotplug_defaults({"domain": {"cpu": {"sockets": 100, "cores": 4}}})
    assert wide["domain"]["cpu"]["maxSockets"] == 128, "capped at 512 vCPUs"


def test_pending_change_conditions_and_the_workload_update_migration() -> None:
    vmi_ = hot_vmi(sockets=4)
    vmi_["status"].update({"currentCPUTopology": {"sockets": 2}, "memory": {"guestCurrent": "2Gi"}})
    assert [c["type"] for c in pending_changes(vmi_)] == ["HotVCPUChange"]
    vmi_["status"]["conditions"] = [
        {"type": "HotVCPUChange", "status": "True"},
        {"type": "LiveMigratable", "status": "True"},
    ]
    migration = workload_update(vmi_, [])
    assert migration["metadata"]["name"].startswith("kubevirt-workload-update-")
    assert workload_update(vmi_, [migration]) is None, "one per change"
    vmi_["status"]["conditions"][1]["status"] = "False"
    assert workload_update(vmi_, []) is None, "a non-migratable VMI's change stays pending"
