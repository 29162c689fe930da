"""Live migration through KubeVirt VirtualMachineInstanceMigrations, on the real scheduler and the simulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_condition, wait_for

from .test_vm_lifecycle import status_of, vm_with, wait_state

pytestmark = pytest.mark.usefixtures("operator")
NON_GPU_HOSTS = ("host-a", "host-b", "host-d")
PROFILE = "grid-k240q-migration-e2e"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def migrations(cluster: Cluster, namespace: str, vm: str) -> list[dict]:
    return cluster.list("virtualmachineinstancemigrations.kubevirt.io", namespace, selector=f"virtstack.io/vm={vm}")


def operator_events(cluster: Cluster, namespace: str, vm: str, reason: str) -> list[str]:
    return [
        e["note"]
        for e in cluster.list("events.events.k8s.io", namespace)
        if (e["regarding"]["name"], e["reason"], e["reportingController"]) == (vm, reason, "virtstack.io/operator")
    ]


def migrating(cluster: Cluster, namespace: str, vm: str, **fields: str) -> dict:
    """The VM's Migrating condition once it has these fields."""
    return wait_condition(cluster, "vsvm", vm, namespace, "Migrating", 60, f"{vm} migrating", **fields)


@pytest.mark.simulator
def test_migration_moves_the_vm_to_the_chosen_host_once(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("mover"), namespace=namespace)
    source = wait_state(cluster, namespace, "mover", "Running")["host"]
    target = next(h for h in NON_GPU_HOSTS if h != source)
    # The simulated migration lasts a few seconds, so Migrating can be seen.
    cluster.kubectl("annotate", "-n", namespace, "vmi/mover", "simulator.virtstack.io/migration-seconds=4")
    requested = now()
    cluster.apply(vm_with("mover", migration={"requestedAt": requested, "host": target}), namespace=namespace)

    assert wait_state(cluster, namespace, "mover", "Migrating")["host"] == source, "it runs where it was meanwhile"
    in_flight = migrating(cluster, namespace, "mover", status="True")["reason"]
    assert in_flight in ("Pending", "Scheduling", "Scheduled", "Running"), "KubeVirt's migration phase"
    done = wait_for(
        lambda: (s := status_of(cluster, namespace, "mover")).get("lastMigratedAt") == requested and s,
        60,
        "lastMigratedAt",
    )
    assert wait_state(cluster, namespace, "mover", "Running")["host"] == target
    assert done["lastMigratedAt"] == requested
    ended = migrating(cluster, namespace, "mover", status="False")
    assert ended["reason"] == "Migrated" and f"from {source} to {target}" in ended["message"]

    notes = wait_for(lambda: operator_events(cluster, namespace, "mover", "Migrated"), 30, "a Migrated Event")
    (note,) = notes
    assert f"live-migrated from {source} to {target}" in note and f"spec.migration.requestedAt {requested}" in note
    (vmim,) = migrations(cluster, namespace, "mover")
    assert vmim["metadata"]["name"] == f"mover-migration-{''.join(c for c in requested if c.isdigit())}"
    assert vmim["spec"] == {"vmiName": "mover", "addedNodeSelector": {"kubernetes.io/hostname": target}}
    owner = vmim["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("VirtualMachine", "mover") and owner[
        "apiVersion"
    ] == "virtstack.io/v1alpha1"
    time.sleep(3)  # further reconciles (status writes, resync) must not start a second migration
    assert len(migrations(cluster, namespace, "mover")) == 1
    assert status_of(cluster, namespace, "mover")["host"] == target

    # A new request replaces the old one: a new VMIM, the finished one is cleaned up.
    again = now()
    assert again != requested
    cluster.apply(vm_with("mover", migration={"requestedAt": again}), namespace=namespace)
    wait_for(lambda: status_of(cluster, namespace, "mover").get("lastMigratedAt") == again, 60, "the second migration")
    assert status_of(cluster, namespace, "mover")["host"] != target
    assert [m["metadata"]["name"] for m in migrations(cluster, namespace, "mover")] == [
        f"mover-migration-{''.join(c for c in again if c.isdigit())}"
    ]


@pytest.fixture
def gpu_profile(cluster: Cluster):
    cluster.apply(
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "GPUProfile",
            "metadata": {"name": PROFILE},
            "spec": {"type": "VGPU", "resourceName": "nvidia.com/GRID_K240Q", "vgpuType": "GRID K240Q"},
        }
    )
    yield PROFILE
    cluster.kubectl("delete", "gpuprofile", PROFILE, "--ignore-not-found")


def test_migration_is_refused_for_a_stopped_vm_and_a_gpu_vm(cluster: Cluster, namespace: str, gpu_profile: str) -> None:
    request = {"requestedAt": now()}
    cluster.apply(vm_with("asleep", state="Stopped", migration=request), namespace=namespace)
    cluster.apply(vm_with("gpu", state="Stopped", gpu={"profile": gpu_profile}, migration=request), namespace=namespace)
    refused = migrating(cluster, namespace, "asleep", status="False")
    assert refused["reason"] == "VMINotRunning" and "Cannot migrate VMI which is not running" in refused["message"]
    refused = migrating(cluster, namespace, "gpu", status="False")
    assert refused["reason"] == "GPUNotMigratable" and "never live-migrated" in refused["message"]
    assert status_of(cluster, namespace, "asleep")["state"] == "Stopped"
    assert not migrations(cluster, namespace, "asleep") and not migrations(cluster, namespace, "gpu")


def test_migration_is_refused_for_a_vm_on_storage_that_is_not_shared(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "golden"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        namespace=namespace,
    )
    cluster.apply(vm_with("rwo", source={"template": {"pvc": {"name": "golden"}}}), namespace=namespace)
    wait_state(cluster, namespace, "rwo", "Running")
    cluster.apply(
        vm_with("rwo", source={"template": {"pvc": {"name": "golden"}}}, migration={"requestedAt": now()}),
        namespace=namespace,
    )
    refused = migrating(cluster, namespace, "rwo", status="False")
    assert refused["reason"] == "DisksNotLiveMigratable"
    assert "PVC rwo-rootdisk is not shared" in refused["message"] and "ReadWriteMany" in refused["message"]
    assert not migrations(cluster, namespace, "rwo")
    assert status_of(cluster, namespace, "rwo")["state"] == "Running"


@pytest.mark.simulator
def test_migration_to_a_host_without_room_stays_migrating_and_says_why(cluster: Cluster, namespace: str) -> None:
    big = {"cpu": 2, "memory": "40Gi"}
    # host-b is filled first (an administrator's pin), so the mover lands elsewhere and cannot follow.
    cluster.apply(vm_with("blocker", resources=big, placement={"host": "host-b"}), namespace=namespace)
    wait_state(cluster, namespace, "blocker", "Running")
    cluster.apply(vm_with("stuck", resources=big), namespace=namespace)
    source = wait_state(cluster, namespace, "stuck", "Running")["host"]
    assert source != "host-b"
    cluster.apply(
        vm_with("stuck", resources=big, migration={"requestedAt": now(), "host": "host-b"}), namespace=namespace
    )
    waiting = migrating(cluster, namespace, "stuck", reason="InsufficientCapacity")
    assert waiting["status"] == "True" and "Insufficient memory" in waiting["message"]
    status = status_of(cluster, namespace, "stuck")
    assert (status["state"], status["host"]) == ("Migrating", source), "it keeps running where it was"
    ready = condition_of({"status": status}, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "Migrating"
    assert len(migrations(cluster, namespace, "stuck")) == 1

    # Room frees up: the migration goes through.
    cluster.kubectl("delete", "vsvm", "blocker", "-n", namespace)
    assert wait_state(cluster, namespace, "stuck", "Running", timeout=90)["host"] == "host-b"


def test_a_pinned_vm_migrates_only_to_its_new_pin(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("pinned", placement={"host": "host-a"}), namespace=namespace)
    assert wait_state(cluster, namespace, "pinned", "Running")["host"] == "host-a"
    cluster.apply(
        vm_with("pinned", placement={"host": "host-a"}, migration={"requestedAt": now()}), namespace=namespace
    )
    refused = migrating(cluster, namespace, "pinned", reason="PinnedToHost")
    assert refused["status"] == "False" and "spec.placement.host" in refused["message"]
    assert not migrations(cluster, namespace, "pinned")

    requested = now()
    cluster.apply(
        vm_with("pinned", placement={"host": "host-b"}, migration={"requestedAt": requested, "host": "host-b"}),
        namespace=namespace,
    )
    wait_for(lambda: status_of(cluster, namespace, "pinned").get("lastMigratedAt") == requested, 60, "migrated")
    assert wait_state(cluster, namespace, "pinned", "Running")["host"] == "host-b"
