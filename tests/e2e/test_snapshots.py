"""VM snapshots on KubeVirt snapshots and restores: chain, limit, timeout, revert, delete, what KubeVirt cannot do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import yaml
from virtstack.objects import condition_of
from virtstack_testbed.simulator.snapshot import SNAPSHOT_ANNOTATION
from virtstack_testbed.stack import SIMULATOR, start_simulator
from virtstack_testbed.testing import Cluster, wait_for

from .conftest import OPERATOR_SETTINGS
from .test_reconcile_writes import settled
from .test_vm_lifecycle import running_vmi_uid, status_of, vmi_uid, wait_state
from .test_walking_skeleton import vsvm

API = "virtstack.io/v1alpha1"
KUBEVIRT_SNAPSHOTS = "virtualmachinesnapshots.snapshot.kubevirt.io"
KUBEVIRT_CONTENTS = "virtualmachinesnapshotcontents.snapshot.kubevirt.io"
KUBEVIRT_RESTORES = "virtualmachinerestores.snapshot.kubevirt.io"


def snapshot(name: str, vm: str, **spec: object) -> dict:
    return {"apiVersion": API, "kind": "VMSnapshot", "metadata": {"name": name}, "spec": {"virtualMachine": vm, **spec}}


def snap(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return cluster.get("vssnap", name, namespace)


def wait_snapshot(cluster: Cluster, namespace: str, name: str, phase: str = "Ready", timeout: float = 60) -> dict:
    def reached() -> dict | None:
        obj = snap(cluster, namespace, name)
        return obj if obj and (obj.get("status") or {}).get("phase") == phase else None

    return wait_for(reached, timeout, f"VMSnapshot {name} {phase}")


def take(cluster: Cluster, namespace: str, name: str, vm: str, **spec: object) -> dict:
    cluster.apply(snapshot(name, vm, **spec), namespace=namespace)
    return wait_snapshot(cluster, namespace, name)


def names(cluster: Cluster, resource: str, namespace: str) -> set[str]:
    return {obj["metadata"]["name"] for obj in cluster.list(resource, namespace)}


def events(cluster: Cluster, namespace: str, reason: str) -> list[dict]:
    return [e for e in cluster.list("events.events.k8s.io", namespace) if e.get("reason") == reason]


@contextmanager
def operator_settings(operator, **settings: object) -> Iterator[None]:
    """Restart the operator with these settings for the block, with the session's afterwards."""
    operator.stop()
    operator.config.write_text(yaml.safe_dump({**OPERATOR_SETTINGS, **settings}))
    operator.start()
    try:
        yield
    finally:
        operator.stop()
        operator.config.write_text(yaml.safe_dump(OPERATOR_SETTINGS))
        operator.start()


@contextmanager
def simulator_stopped(cluster: Cluster) -> Iterator[None]:
    """KubeVirt's controllers down for the block: what the operator creates is not acted on meanwhile."""
    cluster.plane.stop_process(SIMULATOR)
    try:
        yield
    finally:
        start_simulator(cluster.plane)


def test_three_snapshots_form_a_chain_and_beyond_the_limit_the_oldest_goes(
    cluster: Cluster, namespace: str, operator
) -> None:
    cluster.apply(vsvm("chain"), namespace=namespace)
    wait_state(cluster, namespace, "chain", "Running")
    with operator_settings(operator, maxSnapshotsPerVM=2):
        first = take(cluster, namespace, "s1", "chain", description="before the upgrade")
        assert first["status"]["readyToUse"] is True and first["status"]["current"] is True
        assert "parent" not in first["status"] and first["status"]["creationTime"]
        assert condition_of(first, "Ready")["status"] == "True"
        second = take(cluster, namespace, "s2", "chain")
        assert second["status"]["parent"] == "s1" and second["status"]["current"] is True
        assert snap(cluster, namespace, "s1")["status"]["current"] is False
        wait_for(lambda: status_of(cluster, namespace, "chain").get("snapshotCount") == 2, 30, "2 snapshots on the VM")

        third = take(cluster, namespace, "s3", "chain")
        assert third["status"]["parent"] == "s2"
        wait_for(lambda: snap(cluster, namespace, "s1") is None, 30, "the oldest snapshot removed")
        wait_for(lambda: "parent" not in snap(cluster, namespace, "s2")["status"], 30, "s2 re-linked to no parent")
        assert snap(cluster, namespace, "s3")["status"]["parent"] == "s2"
        vm_status = wait_for(
            lambda: (s := status_of(cluster, namespace, "chain")).get("currentSnapshot") == "s3" and s, 30, "current s3"
        )
        assert vm_status["snapshotCount"] == 2
        dropped = events(cluster, namespace, "SnapshotLimitReached")
        assert dropped and "s1" in dropped[0]["note"] and dropped[0]["regarding"]["name"] == "chain"
        wait_for(
            lambda: names(cluster, KUBEVIRT_SNAPSHOTS, namespace) == {"s2", "s3"}, 30, "s1's KubeVirt snapshot gone"
        )


def test_deleting_a_middle_snapshot_keeps_the_chain_and_deleting_the_vm_removes_them(
    cluster: Cluster, namespace: str, operator
) -> None:
    cluster.apply(vsvm("keep"), namespace=namespace)
    wait_state(cluster, namespace, "keep", "Running")
    for name in ("k1", "k2", "k3"):
        take(cluster, namespace, name, "keep")
    assert snap(cluster, namespace, "k3")["status"]["ancestors"] == ["k2", "k1"]
    cluster.kubectl("delete", "vssnap", "k2", "-n", namespace)
    wait_for(lambda: snap(cluster, namespace, "k3")["status"].get("parent") == "k1", 30, "k3 re-parented to k1")
    assert snap(cluster, namespace, "k3")["status"]["current"] is True
    wait_for(lambda: status_of(cluster, namespace, "keep").get("snapshotCount") == 2, 30, "2 snapshots left")
    owner = snap(cluster, namespace, "k1")["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"]) for o in owner] == [("VirtualMachine", "keep")]

    operator.kill()  # the owner references do the work: no operator needed to delete a VM's snapshots
    try:
        cluster.kubectl("delete", "vsvm", "keep", "-n", namespace, "--wait=false")
        wait_for(lambda: not cluster.list("vssnap", namespace), 60, "the VM's snapshots deleted with it")
        wait_for(
            lambda: not cluster.list(KUBEVIRT_SNAPSHOTS, namespace) and not cluster.list(KUBEVIRT_CONTENTS, namespace),
            60,
            "KubeVirt's snapshots and contents gone",
        )
    finally:
        operator.start()


@pytest.mark.simulator
def test_a_snapshot_that_times_out_fails_and_leaves_nothing_while_the_next_one_waits(
    cluster: Cluster, namespace: str, operator
) -> None:
    cluster.apply(vsvm("slow"), namespace=namespace)
    wait_state(cluster, namespace, "slow", "Running")
    with simulator_stopped(cluster):
        cluster.apply(snapshot("late", "slow", timeout="5s"), snapshot("next", "slow"), namespace=namespace)
        wait_for(lambda: cluster.get(KUBEVIRT_SNAPSHOTS, "late", namespace), 30, "KubeVirt snapshot for late")
        cluster.kubectl("annotate", "-n", namespace, f"{KUBEVIRT_SNAPSHOTS}/late", f"{SNAPSHOT_ANNOTATION}=fail")
        waiting = wait_snapshot(cluster, namespace, "next", "Pending")
        ready = condition_of(waiting, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "WaitingForSnapshot") and "late" in ready["message"]
        assert cluster.get(KUBEVIRT_SNAPSHOTS, "next", namespace) is None, "one snapshot in progress per VM"
        created = cluster.get(KUBEVIRT_SNAPSHOTS, "late", namespace)
        assert created["spec"]["failureDeadline"] == "5s"
    failed = wait_snapshot(cluster, namespace, "late", "Failed", timeout=60)
    ready = condition_of(failed, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Timeout") and "5s" in ready["message"]
    assert failed["status"]["readyToUse"] is False
    wait_for(
        lambda: (
            "late" not in names(cluster, KUBEVIRT_SNAPSHOTS, namespace)
            and not any(
                c["spec"]["virtualMachineSnapshotName"] == "late" for c in cluster.list(KUBEVIRT_CONTENTS, namespace)
            )
        ),
        60,
        "no KubeVirt snapshot or content left for the failed snapshot",
    )
    assert wait_snapshot(cluster, namespace, "next")["status"]["readyToUse"] is True
    assert wait_snapshot(cluster, namespace, "late", "Failed"), "a failed snapshot is never taken again"
    assert "late" not in names(cluster, KUBEVIRT_SNAPSHOTS, namespace)
    assert any(e["regarding"]["name"] == "late" for e in events(cluster, namespace, "Failed"))


def revert(cluster: Cluster, namespace: str, name: str, vm: str) -> str:
    requested = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.apply(snapshot(name, vm, revertRequestedAt=requested), namespace=namespace)
    return requested


def test_revert_restores_through_kubevirt_and_brings_back_the_power_state(
    cluster: Cluster, namespace: str, operator
) -> None:
    cluster.apply(vsvm("back"), vsvm("off", state="Stopped"), namespace=namespace)
    wait_state(cluster, namespace, "back", "Running")
    wait_state(cluster, namespace, "off", "Stopped")
    take(cluster, namespace, "b1", "back")
    take(cluster, namespace, "b2", "back")
    take(cluster, namespace, "o1", "off")
    before = running_vmi_uid(cluster, namespace, "back")

    requested = revert(cluster, namespace, "b1", "back")

    def reverted(name: str) -> dict | None:
        obj = snap(cluster, namespace, name)
        return obj if obj["status"].get("lastRevertedAt") == requested else None

    done = wait_for(lambda: reverted("b1"), 90, "b1 reverted")
    assert done["status"]["current"] is True and done["status"]["phase"] == "Ready"
    assert condition_of(done, "Ready")["status"] == "True"
    restores = cluster.list(KUBEVIRT_RESTORES, namespace)
    assert [(r["spec"]["virtualMachineSnapshotName"], r["status"]["complete"]) for r in restores] == [("b1", True)]
    kubevirt_vm = cluster.get("virtualmachines.kubevirt.io", "back", namespace)
    restored = kubevirt_vm["metadata"]["annotations"]["restore.kubevirt.io/lastRestoreUID"]
    assert restored.startswith(restores[0]["metadata"]["name"])
    wait_for(lambda: vmi_uid(cluster, namespace, "back") not in (None, before), 60, "a new VMI after the restore")
    wait_state(cluster, namespace, "back", "Running")
    assert snap(cluster, namespace, "b2")["status"]["current"] is False
    wait_for(lambda: status_of(cluster, namespace, "back").get("currentSnapshot") == "b1", 30, "the VM's current is b1")

    requested = revert(cluster, namespace, "o1", "off")
    wait_for(lambda: reverted("o1"), 60, "o1 reverted")
    wait_state(cluster, namespace, "off", "Stopped")
    assert vmi_uid(cluster, namespace, "off") is None, "a VM stopped before the revert stays stopped"


def test_quiesce_without_a_guest_agent_and_memory_are_reported(cluster: Cluster, namespace: str, operator) -> None:
    cluster.apply(vsvm("plain"), namespace=namespace)
    wait_state(cluster, namespace, "plain", "Running")
    taken = take(cluster, namespace, "q1", "plain", quiesce=True, memory=True)
    quiesced = condition_of(taken, "Quiesced")
    assert (quiesced["status"], quiesced["reason"]) == ("False", "NoGuestAgent")
    assert "guest agent" in quiesced["message"] and "KubeVirt" in quiesced["message"]
    memory = condition_of(taken, "MemoryState")
    assert (memory["status"], memory["reason"]) == ("False", "NotSupported")
    assert "cannot keep" in memory["message"]
    assert taken["status"]["readyToUse"] is True, "the disks are kept: only what KubeVirt cannot do is reported"


def test_cloudstack_limits_memory_snapshots_dropped_on_resize_and_no_iso_change_while_snapshots_exist(
    cluster: Cluster, namespace: str, operator
) -> None:
    cluster.apply(vsvm("grow"), namespace=namespace)
    wait_state(cluster, namespace, "grow", "Running")
    take(cluster, namespace, "with-memory", "grow", memory=True)
    take(cluster, namespace, "disks", "grow")
    running = running_vmi_uid(cluster, namespace, "grow")

    with_iso = vsvm("grow")
    with_iso["spec"]["attachedISO"] = "tools"
    cluster.apply(with_iso, namespace=namespace)

    def refused() -> dict | None:
        ready = condition_of(cluster.get("vsvm", "grow", namespace), "Ready")
        return ready if ready and ready["reason"] == "VMSnapshotsExist" else None

    ready = wait_for(refused, 30, "the ISO attach refused while snapshots exist")
    assert ready["status"] == "False" and "spec.attachedISO" in ready["message"] and "2 VMSnapshot" in ready["message"]
    assert running_vmi_uid(cluster, namespace, "grow") == running, "the VM itself is left alone"
    cluster.apply(vsvm("grow"), namespace=namespace)
    wait_for(lambda: not refused(), 30, "the refusal gone with the change undone")

    resized = vsvm("grow")
    resized["spec"]["resources"]["cpu"] = 4
    cluster.apply(resized, namespace=namespace)
    wait_for(lambda: snap(cluster, namespace, "with-memory") is None, 30, "the memory snapshot dropped")
    assert snap(cluster, namespace, "disks")["status"]["readyToUse"] is True
    wait_for(lambda: "parent" not in snap(cluster, namespace, "disks")["status"], 30, "the chain re-linked")
    dropped = events(cluster, namespace, "MemorySnapshotDropped")
    assert dropped and "with-memory" in dropped[0]["note"] and "cpu=4" in dropped[0]["note"]


def test_a_revert_survives_an_operator_crash(cluster: Cluster, namespace: str, operator) -> None:
    cluster.apply(vsvm("crash"), namespace=namespace)
    wait_state(cluster, namespace, "crash", "Running")
    take(cluster, namespace, "c1", "crash")
    requested = revert(cluster, namespace, "c1", "crash")
    wait_for(lambda: cluster.list(KUBEVIRT_RESTORES, namespace), 30, "the restore created")
    operator.kill()
    operator.start()
    wait_for(
        lambda: snap(cluster, namespace, "c1")["status"].get("lastRevertedAt") == requested, 90, "the revert finished"
    )
    wait_state(cluster, namespace, "crash", "Running")
    assert len(cluster.list(KUBEVIRT_RESTORES, namespace)) == 1, "one restore per request, crash or not"
    assert len(cluster.list(KUBEVIRT_SNAPSHOTS, namespace)) == 1


@pytest.mark.simulator
def test_a_settled_snapshot_is_reconciled_without_writes(cluster: Cluster, namespace: str, operator) -> None:
    cluster.apply(vsvm("quiet"), namespace=namespace)
    wait_state(cluster, namespace, "quiet", "Running")
    before = settled(cluster, namespace)
    take(cluster, namespace, "still", "quiet")
    after_snapshot = settled(cluster, namespace)
    cost = sorted((w.verb, w.resource, w.subresource) for w in after_snapshot[len(before) :])
    print(f"operator writes for one snapshot: {len(cost)}: {cost}")
    assert ("create", "virtualmachinesnapshots", "") in cost
    cluster.kubectl("annotate", "vssnap", "still", "-n", namespace, "example.com/touched=yes")
    cluster.kubectl("annotate", KUBEVIRT_SNAPSHOTS, "still", "-n", namespace, "example.com/touched=yes")
    assert settled(cluster, namespace) == after_snapshot, "a reconcile with nothing to change wrote"


@pytest.mark.simulator
def test_no_snapshot_starts_while_the_vm_migrates(cluster: Cluster, namespace: str, operator) -> None:
    cluster.apply(vsvm("mover"), namespace=namespace)
    wait_state(cluster, namespace, "mover", "Running")
    cluster.kubectl("annotate", "-n", namespace, "vmi/mover", "simulator.virtstack.io/migration-seconds=6")
    requested = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    moving = vsvm("mover")
    moving["spec"]["migration"] = {"requestedAt": requested}
    cluster.apply(moving, namespace=namespace)

    def migrating() -> bool:
        vmi = cluster.get("virtualmachineinstances.kubevirt.io", "mover", namespace) or {}
        state = (vmi.get("status") or {}).get("migrationState") or {}
        return bool(state) and not state.get("completed")

    wait_for(migrating, 30, "the VMI migrating")
    cluster.apply(snapshot("during", "mover"), namespace=namespace)
    waiting = wait_snapshot(cluster, namespace, "during", "Pending")
    assert condition_of(waiting, "Ready")["reason"] == "VirtualMachineMigrating"
    assert cluster.get(KUBEVIRT_SNAPSHOTS, "during", namespace) is None
    wait_for(lambda: status_of(cluster, namespace, "mover").get("lastMigratedAt") == requested, 60, "migrated")
    assert wait_snapshot(cluster, namespace, "during")["status"]["readyToUse"] is True
