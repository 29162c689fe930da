"""Migration, reinstall and reset-on-reboot: the pure decisions behind them."""

from __future__ import annotations

import json

import pytest
from virtstack.api.settings import Settings
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus, VMState
from virtstack.builders.kubevirt_vm import REBOOT_ANNOTATION, VMInputs, build_kubevirt_vm
from virtstack.builders.migration import build_migration, migration_name, refusal, target_unschedulable
from virtstack.builders.rootdisk import (
    KIND_CHANGE_REFUSED,
    REINSTALL_ANNOTATION,
    REINSTALLING,
    RESET_ANNOTATION,
    SNAPSHOTS_EXIST,
    SOURCE_ANNOTATION,
    SOURCE_CHANGED,
    UP_TO_DATE,
    plan_root_disk,
    with_root_disk,
)
from virtstack.status.lifecycle import request_events
from virtstack.status.migration import MigrationObserved
from virtstack.status.virtualmachine import Observed, compute_status

REQUESTED = "2026-11-25T12:00:00Z"
LATER = "2026-11-25T13:00:00Z"
FEDORA_40 = {"template": {"pvc": {"name": "fedora-40"}}}
FEDORA_41 = {"template": {"pvc": {"name": "fedora-41"}}}
IMAGE = {"template": {"image": "quay.io/containerdisks/fedora:41"}}
ISO = {"iso": {"name": "installer"}}


def spec(source: dict = FEDORA_40, state: str = "Running", **fields: object) -> VirtualMachineSpec:
    extra = {"rootDisk": {"size": "20Gi"}} if "iso" in source else {}
    return VirtualMachineSpec.model_validate({"state": state, "source": source, **extra, **fields})


def running_vmi(node: str = "host-a", migratable: dict | None = None, **annotations: str) -> dict:
    conditions = [migratable or {"type": "LiveMigratable", "status": "True"}]
    return {
        "metadata": {"name": "web", "uid": "vmi-1", "annotations": annotations},
        "status": {"phase": "Running", "nodeName": node, "conditions": conditions},
    }


# --- migration --------------------------------------------------------------------------------


def test_one_request_is_one_deterministically_named_owned_vmim() -> None:
    vm_spec = spec(migration={"requestedAt": REQUESTED, "host": "host-b"})
    vmim = build_migration("web", "team-a", "uid-1", vm_spec)
    assert vmim["metadata"]["name"] == migration_name("web", REQUESTED) == "web-migration-20261125120000"
    assert vmim["spec"] == {"vmiName": "web", "addedNodeSelector": {"kubernetes.io/hostname": "host-b"}}
    assert vmim["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert vmim["metadata"]["labels"]["virtstack.io/vm"] == "web"
    assert build_migration("web", "team-a", "uid-1", vm_spec) == vmim, "a rerun builds the same object"
    assert (
        "addedNodeSelector"
        not in build_migration("web", "team-a", "uid-1", spec(migration={"requestedAt": LATER}))["spec"]
    )


@pytest.mark.parametrize(
    ("vm_spec", "vmi", "reason"),
    [
        (spec(migration={"requestedAt": REQUESTED}), running_vmi(), None),
        (spec(migration={"requestedAt": REQUESTED}), None, "VMINotRunning"),
        (spec(state="Stopped", migration={"requestedAt": REQUESTED}), None, "VMINotRunning"),
        (spec(gpu={"profile": "k240q"}, migration={"requestedAt": REQUESTED}), running_vmi(), "GPUNotMigratable"),
        (
            spec(migration={"requestedAt": REQUESTED}),
            running_vmi(
                migratable={
                    "type": "LiveMigratable",
                    "status": "False",
                    "reason": "DisksNotLiveMigratable",
                    "message": "cannot migrate VMI: PVC web-rootdisk is not shared",
                }
            ),
            "DisksNotLiveMigratable",
        ),
        (spec(migration={"requestedAt": REQUESTED, "host": "host-a"}), running_vmi("host-a"), "AlreadyOnHost"),
        (spec(placement={"host": "host-a"}, migration={"requestedAt": REQUESTED}), running_vmi(), "PinnedToHost"),
        (
            spec(placement={"host": "host-b"}, migration={"requestedAt": REQUESTED, "host": "host-c"}),
            running_vmi(),
            "PinnedToHost",
        ),
        (
            spec(placement={"host": "host-b"}, migration={"requestedAt": REQUESTED, "host": "host-b"}),
            running_vmi(),
            None,
        ),
    ],
)
def test_migration_is_refused_with_kubevirts_reason(vm_spec: VirtualMachineSpec, vmi: dict | None, reason) -> None:
    refused = refusal(vm_spec, vmi)
    assert (refused.reason if refused else None) == reason
    if reason == "DisksNotLiveMigratable":
        assert "PVC web-rootdisk is not shared" in refused.message and "ReadWriteMany" in refused.message


def test_target_pod_scheduling_failure_is_read_from_its_condition() -> None:
    pending = {
        "status": {"conditions": [{"type": "PodScheduled", "status": "False", "message": "Insufficient memory"}]}
    }
    assert target_unschedulable(pending) == "Insufficient memory"
    assert target_unschedulable({"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}) is None
    assert target_unschedulable(None) is None


def vmim(phase: str | None, **status: object) -> dict:
    return {"metadata": {"name": "web-migration-20261125120000", "uid": "m-1"}, "status": {"phase": phase, **status}}


def status_with(migration: MigrationObserved, vmi: dict | None = None) -> VirtualMachineStatus:
    vm_spec = spec(source=IMAGE, migration={"requestedAt": REQUESTED})
    kubevirt = {"spec": {"runStrategy": "Once"}, "status": {"printableStatus": "Running", "runStrategy": "Once"}}
    observed = Observed(kubevirt_vm=kubevirt, vmi=vmi or running_vmi(), instance_name="i-1", migration=migration)
    return compute_status(3, vm_spec, observed, VirtualMachineStatus(), now=REQUESTED)


def migrating(status: VirtualMachineStatus):
    return next(c for c in status.conditions if c.type == "Migrating")


def test_a_running_migration_makes_the_vm_migrating_and_a_full_target_says_so() -> None:
    at = VirtualMachineSpec.model_validate({"source": IMAGE, "migration": {"requestedAt": REQUESTED}}).migration
    running = status_with(MigrationObserved(at.requestedAt, vmim=vmim("Scheduling")))
    assert running.state is VMState.MIGRATING and running.host == "host-a"
    assert (migrating(running).status, migrating(running).reason) == ("True", "Scheduling")
    ready = next(c for c in running.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "Migrating")

    full = status_with(
        MigrationObserved(
            at.requestedAt, vmim=vmim("Scheduling"), target_unschedulable="0/4 nodes: Insufficient memory"
        )
    )
    assert full.state is VMState.MIGRATING
    assert migrating(full).reason == "InsufficientCapacity" and "Insufficient memory" in migrating(full).message

    state = {"sourceNode": "host-a", "targetNode": "host-b", "completed": True}
    done = status_with(
        MigrationObserved(at.requestedAt, vmim=vmim("Succeeded", migrationState=state)), running_vmi("host-b")
    )
    assert done.state is VMState.RUNNING and done.host == "host-b"
    assert done.lastMigratedAt == at.requestedAt
    assert migrating(done).reason == "Migrated" and "from host-a to host-b" in migrating(done).message

    failure = {"type": "Failure", "status": "True", "reason": "TargetPodUnschedulable", "message": "unschedulable"}
    failed = status_with(MigrationObserved(at.requestedAt, vmim=vmim("Failed", conditions=[failure])))
    assert failed.state is VMState.RUNNING and failed.lastMigratedAt is None
    assert (migrating(failed).status, migrating(failed).reason) == ("False", "TargetPodUnschedulable")
    assert "set a new spec.migration.requestedAt" in migrating(failed).message


# --- reinstall and reset on reboot ------------------------------------------------------------


def built(vm_spec: VirtualMachineSpec, kubevirt_vm: dict | None = None, dv=None, vmi=None) -> tuple[dict, object]:
    plan = plan_root_disk(vm_spec, kubevirt_vm, dv, vmi)
    inputs = VMInputs("web", "team-a", "uid-1", vm_spec.model_copy(update={"source": plan.source}), Settings(), "i-1")
    return with_root_disk(build_kubevirt_vm(inputs), plan), plan


def data_volume(uid: str = "dv-1", request: str = "", deleting: bool = False) -> dict:
    metadata: dict = {
        "name": "web-rootdisk",
        "uid": uid,
        "annotations": {REINSTALL_ANNOTATION: request} if request else {},
    }
    if deleting:
        metadata["deletionTimestamp"] = REQUESTED
    return {"metadata": metadata}


def test_a_new_vm_records_its_source_and_marks_its_disk_and_vmis() -> None:
    manifest, plan = built(spec(reinstallRequestedAt=REQUESTED))
    record = json.loads(manifest["metadata"]["annotations"][SOURCE_ANNOTATION])
    assert record == {"source": FEDORA_40, "request": REQUESTED}
    (template,) = manifest["spec"]["dataVolumeTemplates"]
    assert template["metadata"]["annotations"][REINSTALL_ANNOTATION] == REQUESTED
    assert template["metadata"]["labels"]["virtstack.io/vm"] == "web"
    assert manifest["spec"]["template"]["metadata"]["annotations"][REINSTALL_ANNOTATION] == REQUESTED
    assert manifest["spec"]["runStrategy"] == "Once" and not plan.halt


def test_editing_the_source_alone_keeps_the_disk_and_sets_reinstall_pending() -> None:
    installed, _ = built(spec())
    manifest, plan = built(spec(FEDORA_41), installed, data_volume(), running_vmi())
    assert manifest == installed, "nothing changes in KubeVirt"
    assert not (plan.halt or plan.delete_disk or plan.replace_vmi)
    assert plan.pending_reason == SOURCE_CHANGED and "spec.reinstallRequestedAt" in plan.pending_message
    assert not plan.reinstalled


def test_a_reinstall_halts_deletes_the_old_disk_once_no_vmi_uses_it_then_starts_again() -> None:
    installed, _ = built(spec())
    request = spec(FEDORA_41, reinstallRequestedAt=REQUESTED)
    # 1: the VM runs on the old disk: halt, build from the new source.
    halting, plan = built(request, installed, data_volume(), running_vmi())
    assert halting["spec"]["runStrategy"] == "Halted" and plan.halt and not plan.delete_disk
    assert halting["spec"]["dataVolumeTemplates"][0]["spec"]["source"]["pvc"]["name"] == "fedora-41"
    assert plan.pending_reason == REINSTALLING and not plan.reinstalled
    # 2: the VMI is gone: delete the old DataVolume (still halted).
    _, plan = built(request, halting, data_volume(), None)
    assert plan.halt and plan.delete_disk
    # 3: it is being deleted: wait, halted, without deleting again.
    _, plan = built(request, halting, data_volume(deleting=True), None)
    assert plan.halt and not plan.delete_disk
    # 4: it is gone: the run strategy comes back, KubeVirt recreates the disk from the template.
    starting, plan = built(request, halting, None, None)
    assert starting["spec"]["runStrategy"] == "Once" and not plan.halt and not plan.reinstalled
    # 5: the new disk, made under the request: done.
    _, plan = built(request, starting, data_volume("dv-2", REQUESTED), running_vmi(**{REINSTALL_ANNOTATION: REQUESTED}))
    assert not (plan.halt or plan.delete_disk or plan.replace_vmi) and plan.reinstalled
    assert plan.pending_reason == UP_TO_DATE


def test_removing_a_carried_out_reinstall_request_keeps_the_disk() -> None:
    """A GitOps prune or a kubectl replace that drops spec.reinstallRequestedAt asks for nothing."""
    request = spec(FEDORA_41, reinstallRequestedAt=REQUESTED)
    done, _ = built(request, None)
    removed = spec(FEDORA_41)
    vmi = running_vmi(**{REINSTALL_ANNOTATION: REQUESTED})
    manifest, plan = built(removed, done, data_volume("dv-2", REQUESTED), vmi)
    assert manifest == done, "nothing changes in KubeVirt"
    assert not (plan.halt or plan.delete_disk or plan.replace_vmi)
    assert plan.pending_reason == UP_TO_DATE
    _, stopped = built(removed, done, data_volume("dv-2", REQUESTED), None)
    assert not (stopped.halt or stopped.delete_disk)


def test_a_container_disk_reinstall_replaces_the_vmi() -> None:
    installed, _ = built(spec(IMAGE))
    new_image = {"template": {"image": "quay.io/containerdisks/fedora:42"}}
    _, plan = built(spec(new_image, reinstallRequestedAt=REQUESTED), installed, None, running_vmi())
    assert plan.replace_vmi and not plan.halt and not plan.reinstalled
    terminating = running_vmi()
    terminating["metadata"]["deletionTimestamp"] = REQUESTED
    _, plan = built(spec(new_image, reinstallRequestedAt=REQUESTED), installed, None, terminating)
    assert not plan.replace_vmi and not plan.reinstalled, "the old VMI on its way out is not the reinstalled one"
    assert plan.pending_reason == REINSTALLING and "the VMI is replaced" in plan.pending_message
    vmi = running_vmi(**{REINSTALL_ANNOTATION: REQUESTED})
    _, plan = built(spec(new_image, reinstallRequestedAt=REQUESTED), installed, None, vmi)
    assert not plan.replace_vmi and plan.reinstalled
    _, plan = built(spec(new_image, reinstallRequestedAt=REQUESTED), installed, None, None)
    assert plan.reinstalled, "a stopped container-disk VM has nothing to replace"


def test_a_change_of_kind_is_refused_and_the_disk_kept() -> None:
    installed, _ = built(spec())
    manifest, plan = built(spec(ISO, reinstallRequestedAt=REQUESTED), installed, data_volume(), running_vmi())
    assert (
        manifest["metadata"]["annotations"][SOURCE_ANNOTATION]
        == installed["metadata"]["annotations"][SOURCE_ANNOTATION]
    )
    assert manifest["spec"]["dataVolumeTemplates"][0]["spec"]["source"]["pvc"]["name"] == "fedora-40"
    assert manifest["spec"]["runStrategy"] == "Once" and not plan.halt and not plan.reinstalled
    assert plan.pending_reason == KIND_CHANGE_REFUSED
    assert "from template to ISO" in plan.pending_message and "template to template, ISO to ISO" in plan.pending_message


def test_reset_on_reboot_names_the_disk_to_replace_only_when_a_reboot_reaches_a_running_vm() -> None:
    reset = {"resetOnReboot": True}
    installed, _ = built(spec(rootDisk=reset))
    rebooting = spec(rootDisk=reset, rebootRequestedAt=REQUESTED)
    halting, plan = built(rebooting, installed, data_volume(), running_vmi())
    assert plan.reset_uid == "dv-1" and plan.halt
    assert halting["metadata"]["annotations"][RESET_ANNOTATION] == "dv-1"
    # The VMI is going: the mark on the KubeVirt VM carries the decision on.
    _, plan = built(rebooting, halting, data_volume(), None)
    assert plan.halt and plan.delete_disk
    after, plan = built(rebooting, halting, data_volume("dv-2"), None)
    assert not plan.halt and RESET_ANNOTATION not in after["metadata"]["annotations"]
    # Rebooted on the new disk: nothing more; a stopped VM's reboot request resets nothing.
    _, plan = built(rebooting, after, data_volume("dv-2"), running_vmi(**{REBOOT_ANNOTATION: REQUESTED}))
    assert not plan.halt
    _, plan = built(spec(state="Stopped", rootDisk=reset, rebootRequestedAt=REQUESTED), installed, data_volume(), None)
    assert not plan.halt
    # Without resetOnReboot a reboot keeps the disk.
    _, plan = built(spec(rebootRequestedAt=REQUESTED), built(spec())[0], data_volume(), running_vmi())
    assert not plan.halt and plan.reset_uid is None


def test_a_reinstall_waits_while_vm_snapshots_exist() -> None:
    installed, _ = built(spec())
    request = spec(FEDORA_41, reinstallRequestedAt=REQUESTED)
    plan = plan_root_disk(request, installed, data_volume(), running_vmi(), snapshot_count=2)
    assert plan.source == spec().source and not plan.halt and not plan.reinstalled
    assert plan.pending_reason == SNAPSHOTS_EXIST and "2 VMSnapshot(s)" in plan.pending_message
    assert plan_root_disk(request, installed, data_volume(), running_vmi()).halt, "without snapshots it proceeds"


def test_a_carried_out_request_makes_one_event() -> None:
    before = VirtualMachineStatus(state=VMState.MIGRATING, host="host-b")
    migrated = {"type": "Migrating", "status": "False", "reason": "Migrated", "lastTransitionTime": REQUESTED}
    migrated["message"] = "live-migrated from host-a to host-b (VirtualMachineInstanceMigration web-migration-1)"
    after = VirtualMachineStatus.model_validate(
        {"state": "Running", "host": "host-b", "lastMigratedAt": REQUESTED, "conditions": [migrated]}
    )
    assert request_events(before, after) == [
        ("Normal", "Migrated", f"{migrated['message']}; spec.migration.requestedAt {REQUESTED}")
    ]
    assert request_events(after, after) == [], "a rerun posts nothing"
    reinstalled = after.model_copy(update={"lastReinstalledAt": after.lastMigratedAt})
    assert [reason for _, reason, _ in request_events(after, reinstalled)] == ["Reinstalled"]
