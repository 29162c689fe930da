"""VM snapshots: the KubeVirt objects built, and the decisions for one VM's snapshots (pure)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from virtstack.api.crd import KINDS
from virtstack.api.settings import Settings
from virtstack.api.virtualmachine import Resources, VirtualMachineSpec, VirtualMachineStatus
from virtstack.api.vmsnapshot import VMSnapshotStatus
from virtstack.builders.kubevirt_vm import ATTACHED_ISO_ANNOTATION, VMInputs, build_kubevirt_vm
from virtstack.builders.snapshot import (
    RESOURCES_ANNOTATION,
    build_kubevirt_snapshot,
    build_restore,
    owned_by_vm,
    restore_name,
    snapshot_owner_patch,
)
from virtstack.objects import merge_patch
from virtstack.status.virtualmachine import Observed, compute_status
from virtstack.status.vmsnapshot import (
    LAST_RESTORE_ANNOTATION,
    Snapshot,
    VMView,
    disk_change_refusal,
    holds_vm,
    plan_snapshots,
    summarize,
)
from virtstack_testbed.kubevirt_crds.kinds import KUBEVIRT_KINDS

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
NOW = "2026-05-01T12:00:00Z"
VM_SPEC = {"resources": {"cpu": 2, "memory": "2Gi"}, "source": {"template": {"image": "quay.io/x:1"}}}


def stamp(minutes: float) -> str:
    return (AT + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def vm(spec: dict | None = None) -> dict:
    return {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": {"name": "web", "namespace": "ns", "uid": "vm-uid"},
        "spec": spec or VM_SPEC,
    }


def kubevirt_vm(printable: str = "Running", annotations: dict | None = None, disks: list | None = None) -> dict:
    return {
        "metadata": {"name": "web", "annotations": annotations or {}},
        "spec": {"template": {"spec": {"domain": {"devices": {"disks": disks or [{"name": "rootdisk", "disk": {}}]}}}}},
        "status": {"printableStatus": printable},
    }


def view(**kwargs: object) -> VMView:
    return VMView(vm(), kubevirt_vm(**kwargs), {"metadata": {}, "status": {"phase": "Running"}})


def vmsnap(name: str, created: float, status: dict | None = None, **spec: object) -> dict:
    return {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "VMSnapshot",
        "metadata": {"name": name, "namespace": "ns", "uid": f"{name}-uid", "creationTimestamp": stamp(created)},
        "spec": {"virtualMachine": "web", **spec},
        "status": status or {},
    }


def kv_snapshot(
    name: str, created: float, phase: str = "Succeeded", cpu: int = 2, memory: str = "2Gi", **status: object
) -> dict:
    done = phase == "Succeeded"
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": stamp(created),
            "annotations": {RESOURCES_ANNOTATION: f"cpu={cpu},memory={memory}"},
        },
        "status": {"phase": phase, "readyToUse": done, **({"creationTime": stamp(created)} if done else {}), **status},
    }


def plan(
    snapshots: list[Snapshot], vm_view: VMView | None = None, max_snapshots: int = 10, at: datetime = AT, spec=None
):
    vm_view = vm_view or view()
    vm_spec = VirtualMachineSpec.model_validate(spec or VM_SPEC) if vm_view.vm else None
    return plan_snapshots(snapshots, vm_view, vm_spec, max_snapshots, "30m", at, NOW)


def ready(name: str, created: float, ancestors: list[str] | None = None, **spec: object) -> Snapshot:
    """A snapshot KubeVirt has taken, whose stored status is what the operator wrote for it."""
    status = {"phase": "Ready", "ancestors": ancestors or []}
    if ancestors:
        status["parent"] = ancestors[0]
    return Snapshot(vmsnap(name, created, status, **spec), kv_snapshot(name, created))


def reason(status: VMSnapshotStatus, kind: str = "Ready") -> tuple[str, str]:
    condition = next(c for c in status.conditions if c.type == kind)
    return condition.status.value, condition.reason


def settled(snapshots: list[Snapshot], **kwargs: object) -> list[Snapshot]:
    """The snapshots with the statuses a plan wrote stored, as the next run sees them."""
    result = plan(snapshots, **kwargs)
    out = []
    for s in snapshots:
        obj = copy.deepcopy(s.obj)
        if s.name in result.statuses:
            obj["status"] = result.statuses[s.name].model_dump(mode="json", exclude_none=True)
        out.append(Snapshot(obj, s.kubevirt, s.restores))
    return out


# --- names and builders ---------------------------------------------------------------------------------


def test_our_snapshot_names_do_not_clash_with_kubevirts() -> None:
    ours = next(k for k in KINDS if k.kind == "VMSnapshot")
    theirs = {n for k in KUBEVIRT_KINDS for n in (k.plural, k.kind.lower(), *k.short_names)}
    assert {ours.plural, ours.singular_name, *ours.short_names}.isdisjoint(theirs)


def test_kubevirt_snapshot_is_owned_by_the_vmsnapshot_and_carries_the_timeout() -> None:
    body = build_kubevirt_snapshot("s1", "ns", "s1-uid", "web", "10m", Resources(cpu=2, memory="2Gi"))
    assert body["metadata"]["name"] == "s1" and body["metadata"]["ownerReferences"][0]["uid"] == "s1-uid"
    assert body["spec"] == {
        "source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "web"},
        "deletionPolicy": "Delete",
        "failureDeadline": "10m",
    }
    assert body["metadata"]["annotations"][RESOURCES_ANNOTATION] == "cpu=2,memory=2Gi"


def test_one_restore_per_revert_request() -> None:
    first, later = AT, AT + timedelta(seconds=1)
    assert restore_name("s1", first) == restore_name("s1", first) != restore_name("s1", later)
    body = build_restore("s1", "ns", "s1-uid", "web", first)
    assert body["spec"]["targetReadinessPolicy"] == "StopTarget"
    assert body["spec"]["volumeRestorePolicy"] == "InPlace", "restored disks keep the names the VM is built with"
    assert body["spec"]["virtualMachineSnapshotName"] == "s1"


def test_the_vm_owner_reference_touches_only_metadata() -> None:
    obj = vmsnap("s1", 0)
    patch = snapshot_owner_patch(obj, vm())
    assert set(patch) == {"apiVersion", "kind", "metadata"}
    assert patch["metadata"]["ownerReferences"] == [
        {"apiVersion": "virtstack.io/v1alpha1", "kind": "VirtualMachine", "name": "web", "uid": "vm-uid"}
    ]
    assert not owned_by_vm(obj, vm())
    obj["metadata"]["ownerReferences"] = patch["metadata"]["ownerReferences"]
    assert owned_by_vm(obj, vm())


# --- taking snapshots ------------------------------------------------------------------------------------


def test_a_snapshot_is_taken_once_its_status_says_creating_and_the_next_waits() -> None:
    first = plan([Snapshot(vmsnap("s1", 0)), Snapshot(vmsnap("s2", 1))])
    assert first.create_snapshots == []  # the status (with the chain) is written first
    assert first.statuses["s1"].phase.value == "Creating"
    assert reason(first.statuses["s2"]) == ("False", "WaitingForSnapshot")
    assert "s1" in next(c.message for c in first.statuses["s2"].conditions)

    second = plan(settled([Snapshot(vmsnap("s1", 0)), Snapshot(vmsnap("s2", 1))]))
    assert second.create_snapshots == ["s1"]


@pytest.mark.parametrize(
    ("vm_view", "why"),
    [
        (VMView(None), "VirtualMachineNotFound"),
        (VMView(vm(), None), "VirtualMachineNotCreated"),
        (view(printable="Migrating"), "VirtualMachineMigrating"),
    ],
)
def test_a_snapshot_waits_for_its_vm(vm_view: VMView, why: str) -> None:
    result = plan([Snapshot(vmsnap("s1", 0))], vm_view=vm_view)
    assert result.create_snapshots == [] and result.statuses["s1"].phase.value == "Pending"
    assert reason(result.statuses["s1"]) == ("False", why)


def test_the_chain_current_snapshot_and_relinking_after_a_deletion() -> None:
    s1, s2 = ready("s1", 0), ready("s2", 1, ["s1"])
    s3 = Snapshot(vmsnap("s3", 2, {"phase": "Creating"}))
    result = plan([s1, s2, s3])
    assert result.statuses["s3"].ancestors == ["s2", "s1"] and result.statuses["s3"].parent == "s2"
    assert [n for n, s in result.statuses.items() if s.current] == ["s2"]

    taken = Snapshot(s3.obj | {"status": {"phase": "Creating", "ancestors": ["s2", "s1"]}}, kv_snapshot("s3", 2))
    result = plan([s1, s2, taken])
    assert [n for n, s in result.statuses.items() if s.current] == ["s3"]

    without_s2 = plan([s1, Snapshot(taken.obj, taken.kubevirt)])
    assert without_s2.statuses["s3"].parent == "s1" and without_s2.statuses["s3"].ancestors == ["s1"]


def test_beyond_the_limit_the_oldest_goes_and_the_chain_skips_it() -> None:
    result = plan([ready("s1", 0), ready("s2", 1, ["s1"]), ready("s3", 2, ["s2", "s1"])], max_snapshots=2)
    assert [(name, why) for name, why, _ in result.delete_snapshots] == [("s1", "SnapshotLimitReached")]
    assert "s1" not in result.statuses
    assert result.statuses["s2"].parent is None and result.statuses["s3"].ancestors == ["s2"]


def test_the_limit_never_removes_the_current_snapshot() -> None:
    reverted = ready("s1", 0)
    reverted.obj["status"]["lastRevertedAt"] = stamp(5)
    result = plan([reverted, ready("s2", 1, ["s1"]), ready("s3", 2, ["s2", "s1"])], max_snapshots=2)
    assert [name for name, _, _ in result.delete_snapshots] == ["s2"]
    assert result.statuses["s1"].current is True


def test_memory_snapshots_are_dropped_when_the_vm_is_resized() -> None:
    snapshots = [ready("m1", 0, memory=True), ready("d1", 1, ["m1"])]
    assert plan(snapshots).delete_snapshots == []
    resized = {**VM_SPEC, "resources": {"cpu": 4, "memory": "2Gi"}}
    result = plan(snapshots, spec=resized)
    assert [(name, why) for name, why, _ in result.delete_snapshots] == [("m1", "MemorySnapshotDropped")]
    assert result.statuses["d1"].parent is None


def test_a_snapshot_past_its_deadline_fails_then_its_kubevirt_snapshot_goes() -> None:
    error = {"time": stamp(5), "message": "snapshot deadline exceeded"}
    late = Snapshot(vmsnap("s1", 0, {"phase": "Creating"}, timeout="5m"), kv_snapshot("s1", 0, "Failed", error=error))
    result = plan([late])
    assert result.statuses["s1"].phase.value == "Failed" and result.delete_kubevirt == []
    assert reason(result.statuses["s1"]) == ("False", "Timeout")
    assert "5m" in result.statuses["s1"].conditions[0].message

    failed = settled([late])[0]
    again = plan([failed])
    assert again.delete_kubevirt == ["s1"] and again.statuses["s1"].phase.value == "Failed"
    gone = plan([Snapshot(failed.obj)])
    assert gone.create_snapshots == [] and gone.statuses["s1"].phase.value == "Failed", "never taken again"
    assert reason(gone.statuses["s1"]) == ("False", "Timeout")


def test_the_operator_fails_a_snapshot_kubevirt_never_finishes() -> None:
    stuck = Snapshot(vmsnap("s1", 0, {"phase": "Creating"}, timeout="1m"), kv_snapshot("s1", 0, "InProgress"))
    assert plan([stuck], at=AT + timedelta(seconds=60)).statuses["s1"].phase.value == "Creating"
    assert plan([stuck], at=AT + timedelta(seconds=91)).statuses["s1"].phase.value == "Failed"


# --- what KubeVirt cannot do -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("indications", "expected"),
    [
        (["Online", "NoGuestAgent"], ("False", "NoGuestAgent")),
        (["Online", "GuestAgent"], ("True", "GuestAgent")),
        (["Online", "GuestAgent", "QuiesceTimeout"], ("False", "QuiesceTimeout")),
        (["Online", "Paused"], ("False", "Paused")),
        ([], ("True", "Offline")),
    ],
)
def test_quiesce_is_reported_from_kubevirts_indications(indications: list[str], expected: tuple[str, str]) -> None:
    taken = kv_snapshot(
        "s1", 0, indications=indications, sourceIndications=[{"indication": i, "message": i} for i in indications]
    )
    result = plan([Snapshot(vmsnap("s1", 0, {"phase": "Creating"}, quiesce=True), taken)])
    assert reason(result.statuses["s1"], "Quiesced") == expected


def test_memory_is_reported_as_not_kept() -> None:
    result = plan([Snapshot(vmsnap("s1", 0, memory=True))])
    status, why = reason(result.statuses["s1"], "MemoryState")
    assert (status, why) == ("False", "NotSupported")
    assert "cannot keep" in next(c.message for c in result.statuses["s1"].conditions if c.type == "MemoryState")


# --- reverting ------------------------------------------------------------------------------------------


def test_a_revert_holds_the_vm_creates_one_restore_and_makes_the_snapshot_current() -> None:
    requested = stamp(10)
    s1 = ready("s1", 0, revertRequestedAt=requested)
    s2 = ready("s2", 1, ["s1"])
    result = plan([s1, s2])
    assert result.create_restores == ["s1"] and result.statuses["s1"].phase.value == "Reverting"
    assert reason(result.statuses["s1"]) == ("False", "Reverting")

    stored = settled([s1, s2])
    assert holds_vm(stored[0].obj, kubevirt_vm())
    name = restore_name("s1", datetime.fromisoformat(requested))
    restored = kubevirt_vm(annotations={LAST_RESTORE_ANNOTATION: f"{name}-restore-uid"})
    assert not holds_vm(stored[0].obj, restored), "KubeVirt rewrote the VM: it may start again"

    complete = {"metadata": {"name": name}, "status": {"complete": True}}
    done = plan([Snapshot(stored[0].obj, s1.kubevirt, (complete,)), stored[1]])
    assert done.create_restores == [] and done.statuses["s1"].phase.value == "Ready"
    assert done.statuses["s1"].lastRevertedAt == datetime.fromisoformat(requested)
    assert done.statuses["s1"].current is True and done.statuses["s2"].current is False


def test_a_failed_revert_is_reported_and_releases_the_vm() -> None:
    requested = stamp(10)
    s1 = ready("s1", 0, revertRequestedAt=requested)
    name = restore_name("s1", datetime.fromisoformat(requested))
    failed = {
        "metadata": {"name": name},
        "status": {"complete": False, "conditions": [{"type": "Failure", "status": "True", "message": "no room"}]},
    }
    result = plan([Snapshot(s1.obj, s1.kubevirt, (failed,))])
    assert result.statuses["s1"].phase.value == "Ready" and result.create_restores == []
    assert reason(result.statuses["s1"]) == ("False", "RevertFailed")
    assert "no room" in result.statuses["s1"].conditions[0].message


def test_restores_of_earlier_requests_are_removed() -> None:
    s1 = ready("s1", 0, revertRequestedAt=stamp(10))
    s1.obj["status"]["lastRevertedAt"] = stamp(10)
    old = {"metadata": {"name": restore_name("s1", AT)}, "status": {"complete": True}}
    assert plan([Snapshot(s1.obj, s1.kubevirt, (old,))]).delete_restores == [old["metadata"]["name"]]


def test_a_settled_plan_writes_nothing_the_second_time() -> None:
    snapshots = settled([ready("s1", 0), ready("s2", 1, ["s1"], quiesce=True, memory=True)])
    again = plan(snapshots)
    for s in snapshots:
        written = again.statuses[s.name].model_dump(mode="json", exclude_none=True)
        assert merge_patch(s.obj["status"], written) == {}


# --- what the VM sees ------------------------------------------------------------------------------------


def test_the_vm_counts_its_snapshots_and_names_the_current_one() -> None:
    snapshots = [
        vmsnap("s1", 0, {"phase": "Ready", "current": False}),
        vmsnap("s2", 1, {"phase": "Ready", "current": True}),
        vmsnap("bad", 2, {"phase": "Failed"}),
    ]
    summary = summarize(snapshots, kubevirt_vm())
    assert (summary.count, summary.current, summary.reverting_to) == (2, "s2", None)


def test_no_iso_attached_or_detached_while_snapshots_exist() -> None:
    spec = VirtualMachineSpec.model_validate({**VM_SPEC, "attachedISO": "tools"})
    assert disk_change_refusal(spec, kubevirt_vm(), 0) is None
    refusal = disk_change_refusal(spec, kubevirt_vm(), 2)
    assert refusal and refusal.startswith("spec.attachedISO: cannot attach ISO tools")
    assert "delete the snapshots, or remove spec.attachedISO" in refusal
    with_tools = kubevirt_vm(annotations={ATTACHED_ISO_ANNOTATION: "tools"})
    assert disk_change_refusal(spec, with_tools, 2) is None
    detached = VirtualMachineSpec.model_validate(VM_SPEC)
    assert "detach ISO tools" in disk_change_refusal(detached, with_tools, 1)
    assert build_kubevirt_vm_annotations(spec) == {ATTACHED_ISO_ANNOTATION: "tools"}


def build_kubevirt_vm_annotations(spec: VirtualMachineSpec) -> dict:
    inputs = VMInputs("web", "ns", "vm-uid", spec, Settings(), "i-1")
    return build_kubevirt_vm(inputs)["metadata"].get("annotations", {})


def test_a_vm_held_for_a_revert_says_so_and_is_built_halted() -> None:
    spec = VirtualMachineSpec.model_validate(VM_SPEC)
    held = VMInputs("web", "ns", "vm-uid", spec, Settings(), "i-1", halted=True)
    assert build_kubevirt_vm(held)["spec"]["runStrategy"] == "Halted"
    seen = Observed(kubevirt_vm=kubevirt_vm("Stopped"), vmi=None, instance_name="i-1", reverting_to="s1")
    status = compute_status(1, spec, seen, VirtualMachineStatus())
    ready_condition = next(c for c in status.conditions if c.type == "Ready")
    assert (ready_condition.status.value, ready_condition.reason) == ("False", "Reverting")
    assert "VMSnapshot s1" in ready_condition.message


def test_a_revert_request_older_than_the_snapshot_is_ignored_and_said_so() -> None:
    stale = ready("s1", 5, revertRequestedAt=stamp(1))
    result = plan([stale])
    assert result.create_restores == [] and result.statuses["s1"].phase.value == "Ready"
    assert result.statuses["s1"].lastRevertedAt is None
    ready_condition = result.statuses["s1"].conditions[0]
    assert ready_condition.status.value == "True" and "older than the snapshot" in ready_condition.message
