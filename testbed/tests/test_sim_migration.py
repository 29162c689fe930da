"""Live migration (issue 4 §6) against the real scheduler: a target launcher pod placed away from the
source node, the handoff, refusals KubeVirt's webhook makes, and failures that leave the VMI in place.
"""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, kubevirt_vm, simulator_flags, wait_for

pytestmark = pytest.mark.simulator

FAST = ("--heartbeat-seconds=1", "--heartbeat-timeout-seconds=4", "--migration-unschedulable-timeout-seconds=3")


@pytest.fixture(scope="module", autouse=True)
def fast_simulator(cluster: Cluster):
    with simulator_flags(cluster, *FAST):
        yield


def running(cluster: Cluster, namespace: str, name: str) -> dict:
    return wait_for(
        lambda: (v := cluster.get("vmi", name, namespace)) and v.get("status", {}).get("phase") == "Running" and v,
        60,
        f"VMI {name} Running",
    )


def migrate(cluster: Cluster, namespace: str, name: str, vmi: str, **spec) -> None:
    manifest = {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": name},
        "spec": {"vmiName": vmi, **spec},
    }
    cluster.apply(manifest, namespace=namespace)


def finished(cluster: Cluster, namespace: str, name: str) -> dict:
    return wait_for(
        lambda: (
            (m := cluster.get("virtualmachineinstancemigrations.kubevirt.io", name, namespace))
            and (m.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            and m
        ),
        60,
        f"migration {name} finished",
    )


def test_migration_moves_the_vmi_to_another_node(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        kubevirt_vm("mover", annotations={"simulator.virtstack.io/migration-seconds": "3"}), namespace=namespace
    )
    before = running(cluster, namespace, "mover")
    source = before["status"]["nodeName"]
    migrate(cluster, namespace, "move", "mover")
    wait_for(
        lambda: cluster.get("vm", "mover", namespace)["status"].get("printableStatus") == "Migrating",
        30,
        "the VM Migrating",
        interval=0.2,
    )
    vmim = finished(cluster, namespace, "move")
    assert vmim["status"]["phase"] == "Succeeded"
    assert vmim["metadata"]["labels"]["kubevirt.io/vmi-name"] == "mover"
    phases = [p["phase"] for p in vmim["status"]["phaseTransitionTimestamps"]]
    assert phases == ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]
    vmi = cluster.get("vmi", "mover", namespace)
    state = vmi["status"]["migrationState"]
    assert vmi["metadata"]["uid"] == before["metadata"]["uid"] and vmi["status"]["phase"] == "Running"
    assert state["completed"] is True and state["endTimestamp"] and state["sourceNode"] == source
    assert vmi["status"]["nodeName"] == state["targetNode"] != source
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == state["targetNode"]
    assert vmim["status"]["migrationState"]["targetNode"] == state["targetNode"]
    [pod] = wait_for(
        lambda: (pods := cluster.list("pods", namespace, "kubevirt.io=virt-launcher")) and len(pods) == 1 and pods,
        30,
        "only the target launcher pod left",
    )
    assert pod["spec"]["nodeName"] == state["targetNode"]
    assert pod["metadata"]["labels"]["kubevirt.io/migrationJobUID"] == vmim["metadata"]["uid"]
    wait_for(lambda: cluster.get("vm", "mover", namespace)["status"].get("printableStatus") == "Running", 30, "Running")


def test_added_node_selector_picks_the_target(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("picky"), namespace=namespace)
    source = running(cluster, namespace, "picky")["status"]["nodeName"]
    target = next(n for n in ("host-a", "host-b", "host-d") if n != source)
    migrate(cluster, namespace, "to-target", "picky", addedNodeSelector={"kubernetes.io/hostname": target})
    assert finished(cluster, namespace, "to-target")["status"]["phase"] == "Succeeded"
    assert cluster.get("vmi", "picky", namespace)["status"]["nodeName"] == target


def test_unschedulable_target_fails_and_leaves_the_vmi_in_place(cluster: Cluster, namespace: str) -> None:
    cluster.apply(kubevirt_vm("stuck"), namespace=namespace)
    vmi = running(cluster, namespace, "stuck")
    source = vmi["status"]["nodeName"]
    # Only the source node matches, and the anti-affinity keeps the target off it.
    migrate(cluster, namespace, "nowhere", "stuck", addedNodeSelector={"kubernetes.io/hostname": source})
    vmim = finished(cluster, namespace, "nowhere")
    assert vmim["status"]["phase"] == "Failed"
    failure = condition_of(vmim, "Failure")
    assert failure["reason"] == "TargetPodUnschedulable" and "unschedulable" in failure["message"]
    after = cluster.get("vmi", "stuck", namespace)
    assert after["status"]["nodeName"] == source and after["status"]["phase"] == "Running"
    wait_for(
        lambda: len(cluster.list("pods", namespace, "kubevirt.io=virt-launcher")) == 1, 30, "the target pod removed"
    )


def test_gpu_vmi_is_not_migratable_and_its_migration_is_refused(cluster: Cluster, namespace: str) -> None:
    vm = kubevirt_vm("gpu")
    vm["spec"]["template"]["spec"]["domain"]["devices"]["gpus"] = [
        {"name": "gpu0", "deviceName": "nvidia.com/GRID_K240Q"}
    ]
    cluster.apply(vm, namespace=namespace)
    vmi = running(cluster, namespace, "gpu")
    migratable = condition_of(vmi, "LiveMigratable")
    assert migratable["status"] == "False" and migratable["reason"] == "HostDeviceNotLiveMigratable"
    assert condition_of(cluster.get("vm", "gpu", namespace), "LiveMigratable")["status"] == "False"
    migrate(cluster, namespace, "gpu-move", "gpu")
    vmim = finished(cluster, namespace, "gpu-move")
    failure = condition_of(vmim, "Failure")
    assert vmim["status"]["phase"] == "Failed" and failure["reason"] == "HostDeviceNotLiveMigratable"
    assert failure["message"].startswith("Cannot migrate VMI, Reason: HostDeviceNotLiveMigratable, Message: ")
    assert cluster.get("vmi", "gpu", namespace)["status"]["nodeName"] == vmi["status"]["nodeName"]


def test_failed_migration_and_one_in_flight_at_a_time(cluster: Cluster, namespace: str) -> None:
    annotations = {"simulator.virtstack.io/migration": "fail", "simulator.virtstack.io/migration-seconds": "3"}
    cluster.apply(kubevirt_vm("flaky", annotations=annotations), namespace=namespace)
    source = running(cluster, namespace, "flaky")["status"]["nodeName"]
    migrate(cluster, namespace, "first", "flaky")
    wait_for(
        lambda: (
            (cluster.get("virtualmachineinstancemigrations.kubevirt.io", "first", namespace).get("status") or {}).get(
                "phase"
            )
            == "Running"
        ),
        30,
        "the first migration running",
        interval=0.2,
    )
    migrate(cluster, namespace, "second", "flaky")
    second = finished(cluster, namespace, "second")
    assert condition_of(second, "Failure")["reason"] == "MigrationInFlight"
    first = finished(cluster, namespace, "first")
    assert first["status"]["phase"] == "Failed"
    vmi = cluster.get("vmi", "flaky", namespace)
    assert vmi["status"]["migrationState"]["failed"] is True and vmi["status"]["nodeName"] == source
    assert vmi["status"]["phase"] == "Running"


def hot_vm(name: str, sockets: int, guest: str) -> dict:
    vm = kubevirt_vm(name, memory=guest)
    vm["spec"]["template"]["spec"]["domain"]["cpu"] = {"sockets": sockets}
    return vm


def test_hotplug_within_limits_goes_live_through_a_workload_update_migration(cluster: Cluster, namespace: str) -> None:
    cluster.apply(hot_vm("hot", 1, "1Gi"), namespace=namespace)
    before = running(cluster, namespace, "hot")
    assert (
        before["spec"]["domain"]["cpu"]["maxSockets"] == 4 and before["spec"]["domain"]["memory"]["maxGuest"] == "4Gi"
    )
    cluster.apply(hot_vm("hot", 2, "2Gi"), namespace=namespace)

    def applied():
        vmi = cluster.get("vmi", "hot", namespace)
        status = vmi["status"]
        done = (
            status.get("currentCPUTopology", {}).get("sockets") == 2
            and status.get("memory", {}).get("guestCurrent") == "2Gi"
            and not condition_of(vmi, "HotVCPUChange")
            and not condition_of(vmi, "HotMemoryChange")
        )
        return done and vmi

    vmi = wait_for(applied, 60, "sockets and memory applied live")
    assert vmi["metadata"]["uid"] == before["metadata"]["uid"] and vmi["status"]["memory"]["guestAtBoot"] == "1Gi"
    [migration] = cluster.list("virtualmachineinstancemigrations.kubevirt.io", namespace)
    assert migration["metadata"]["name"].startswith("kubevirt-workload-update-")
    assert migration["status"]["phase"] == "Succeeded"
    assert vmi["status"]["nodeName"] == migration["status"]["migrationState"]["targetNode"]
    assert condition_of(cluster.get("vm", "hot", namespace), "RestartRequired") is None


def test_hotplug_beyond_limits_requires_a_restart(cluster: Cluster, namespace: str) -> None:
    cluster.apply(hot_vm("capped", 1, "1Gi"), namespace=namespace)
    running(cluster, namespace, "capped")
    cluster.apply(hot_vm("capped", 8, "1Gi"), namespace=namespace)
    restart = wait_for(lambda: condition_of(cluster.get("vm", "capped", namespace), "RestartRequired"), 30, "restart")
    assert restart["message"] == "CPU sockets updated in template spec to a value higher than what's available"
    vmi = cluster.get("vmi", "capped", namespace)
    assert vmi["spec"]["domain"]["cpu"]["sockets"] == 1 and not cluster.list(
        "virtualmachineinstancemigrations.kubevirt.io", namespace
    )
