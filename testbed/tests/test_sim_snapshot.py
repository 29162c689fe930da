"""Snapshots and restore (issue 4 §7): VirtualMachineSnapshot -> Content, indications, the source
lock, failureDeadline, and VirtualMachineRestore that needs the target stopped."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, kubevirt_vm, wait_for

pytestmark = pytest.mark.simulator


def snapshot(name: str, vm: str, annotations: dict | None = None, **spec) -> dict:
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm}, **spec},
    }


def restore(name: str, vm: str, snap: str, policy: str) -> dict:
    return {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineRestore",
        "metadata": {"name": name},
        "spec": {
            "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": vm},
            "virtualMachineSnapshotName": snap,
            "targetReadinessPolicy": policy,
        },
    }


def with_disk(name: str, annotations: dict | None = None) -> dict:
    vm = kubevirt_vm(name, annotations=annotations)
    vm["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": f"{name}-data"}, "spec": {"source": {"blank": {}}}}]
    spec = vm["spec"]["template"]["spec"]
    spec["domain"]["devices"]["disks"].append({"name": "data", "disk": {"bus": "virtio"}})
    spec["volumes"].append({"name": "data", "dataVolume": {"name": f"{name}-data"}})
    return vm


def running(cluster: Cluster, namespace: str, name: str) -> dict:
    return wait_for(
        lambda: (v := cluster.get("vmi", name, namespace)) and v.get("status", {}).get("phase") == "Running" and v,
        60,
        f"VMI {name} Running",
    )


def status(cluster: Cluster, kind: str, name: str, namespace: str) -> dict:
    return (cluster.get(kind, name, namespace) or {}).get("status") or {}


def test_online_snapshot_with_agent_then_restore_stopping_the_target(cluster: Cluster, namespace: str) -> None:
    vm = with_disk("db", {"simulator.virtstack.io/guest-agent": "true"})
    cluster.apply(vm, namespace=namespace)
    first = running(cluster, namespace, "db")
    wait_for(lambda: condition_of(cluster.get("vmi", "db", namespace), "AgentConnected"), 30, "agent connected")
    cluster.apply(
        snapshot("snap", "db", {"simulator.virtstack.io/snapshot-seconds": "3"}, failureDeadline="2m"),
        namespace=namespace,
    )
    wait_for(lambda: status(cluster, "vm", "db", namespace).get("snapshotInProgress") == "snap", 30, "source locked")
    assert status(cluster, "vmi", "db", namespace).get("fsFreezeStatus") == "frozen"
    done = wait_for(
        lambda: (
            (s := status(cluster, "virtualmachinesnapshots.snapshot.kubevirt.io", "snap", namespace)).get("phase")
            == "Succeeded"
            and s
        ),
        30,
        "done",
    )
    assert done["readyToUse"] is True and done["indications"] == ["Online", "GuestAgent"]
    assert done["snapshotVolumes"] == {"includedVolumes": ["data"], "excludedVolumes": ["root"]}
    assert done["sourceUID"] == cluster.get("vm", "db", namespace)["metadata"]["uid"]
    assert condition_of({"status": done}, "Ready")["status"] == "True"
    content = cluster.get(
        "virtualmachinesnapshotcontents.snapshot.kubevirt.io", done["virtualMachineSnapshotContentName"], namespace
    )
    assert content["status"]["readyToUse"] is True
    assert content["spec"]["source"]["virtualMachine"]["spec"]["template"] == vm["spec"]["template"]
    assert content["spec"]["volumeBackups"][0]["persistentVolumeClaim"]["metadata"]["name"] == "db-data"
    wait_for(lambda: "snapshotInProgress" not in status(cluster, "vm", "db", namespace), 30, "source unlocked")
    wait_for(lambda: status(cluster, "vmi", "db", namespace).get("fsFreezeStatus") == "thawed", 30, "thawed")

    changed = with_disk("db", {"simulator.virtstack.io/guest-agent": "true"})
    changed["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]["image"] = "quay.io/containerdisks/fedora:42"
    cluster.apply(changed, namespace=namespace)
    cluster.apply(restore("back", "db", "snap", "StopTarget"), namespace=namespace)
    result = wait_for(
        lambda: (
            (s := status(cluster, "virtualmachinerestores.snapshot.kubevirt.io", "back", namespace)).get("complete")
            and s
        ),
        60,
        "done",
    )
    assert result["restoreTime"] and result["restores"][0]["volumeName"] == "data"
    assert condition_of({"status": result}, "Ready")["status"] == "True"
    restored = cluster.get("vm", "db", namespace)
    assert restored["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]["image"].endswith(":41")
    assert restored["spec"]["runStrategy"] == "Always", "the snapshot's spec, run strategy included"
    assert "restoreInProgress" not in restored.get("status", {})
    again = running(cluster, namespace, "db")
    assert again["metadata"]["uid"] != first["metadata"]["uid"], "restore is never online: a new VMI"


def test_snapshot_without_agent_and_offline(cluster: Cluster, namespace: str) -> None:
    cluster.apply(with_disk("plain"), kubevirt_vm("off", "Halted"), namespace=namespace)
    running(cluster, namespace, "plain")
    cluster.apply(snapshot("online", "plain"), snapshot("offline", "off"), namespace=namespace)
    online = wait_for(
        lambda: (
            (s := status(cluster, "virtualmachinesnapshots.snapshot.kubevirt.io", "online", namespace)).get(
                "readyToUse"
            )
            and s
        ),
        30,
        "",
    )
    offline = wait_for(
        lambda: (
            (s := status(cluster, "virtualmachinesnapshots.snapshot.kubevirt.io", "offline", namespace)).get(
                "readyToUse"
            )
            and s
        ),
        30,
        "",
    )
    assert online["indications"] == ["Online", "NoGuestAgent"]
    assert offline["indications"] == [] and offline["snapshotVolumes"]["includedVolumes"] == []


def test_snapshot_past_its_deadline_fails(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("slow", "Halted"), namespace=namespace)
    cluster.apply(
        snapshot("never", "slow", {"simulator.virtstack.io/snapshot": "fail"}, failureDeadline="3s"),
        namespace=namespace,
    )
    failed = wait_for(
        lambda: (
            (s := status(cluster, "virtualmachinesnapshots.snapshot.kubevirt.io", "never", namespace)).get("phase")
            == "Failed"
            and s
        ),
        30,
        "failed",
    )
    assert failed["error"]["message"] == "snapshot deadline exceeded" and failed["readyToUse"] is False
    wait_for(lambda: "snapshotInProgress" not in status(cluster, "vm", "slow", namespace), 30, "source unlocked")


def test_restore_of_a_running_target_with_fail_immediate_fails(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("busy"), namespace=namespace)
    running(cluster, namespace, "busy")
    cluster.apply(snapshot("s", "busy"), namespace=namespace)
    wait_for(
        lambda: status(cluster, "virtualmachinesnapshots.snapshot.kubevirt.io", "s", namespace).get("readyToUse"),
        30,
        "snapshot ready",
    )
    cluster.apply(restore("r", "busy", "s", "FailImmediate"), namespace=namespace)
    failure = wait_for(
        lambda: condition_of(cluster.get("virtualmachinerestores.snapshot.kubevirt.io", "r", namespace), "Failure"),
        30,
        "restore failed",
    )
    assert "must be stopped" in failure["reason"] or "must be stopped" in failure.get("message", "")
    assert cluster.get("vmi", "busy", namespace)["status"]["phase"] == "Running"
