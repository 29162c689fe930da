"""VirtualMachineSnapshot, -Content and VirtualMachineRestore decisions (pure).

Follows kubevirt/kubevirt pkg/storage/snapshot/snapshot.go and source.go (the source VM marked
`snapshotInProgress`, the guest frozen when an agent is connected, the content holding a copy of
the VM and one volume backup per PVC / DataVolume volume, indications, `failureDeadline`) and
pkg/storage/snapshot/restore.go (no online restore: `targetReadinessPolicy` decides what to do
with a running target; the VM spec restored from the content; `complete`).

The testbed has no CSI driver: volume backups name VolumeSnapshots that are not created, and a
restore brings back the VM spec, not disk contents. Test hooks (annotations on the snapshot):
`simulator.virtstack.io/snapshot: fail` never completes (it fails at its deadline);
`simulator.virtstack.io/snapshot: quiesce-timeout` adds the QuiesceTimeout indication;
`simulator.virtstack.io/snapshot-seconds: "N"` keeps it InProgress N seconds.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from virtstack.objects import condition_of

from .clock import now
from .node import parse_time

SNAPSHOT_ANNOTATION = "simulator.virtstack.io/snapshot"
SNAPSHOT_SECONDS_ANNOTATION = "simulator.virtstack.io/snapshot-seconds"
DEFAULT_FAILURE_DEADLINE = timedelta(minutes=5)
DEFAULT_RESTORE_GRACE = timedelta(minutes=5)  # targetReadinessPolicy WaitGracePeriod
FINAL = ("Succeeded", "Failed")
LAST_RESTORE_ANNOTATION = "restore.kubevirt.io/lastRestoreUID"  # restore.go marks the restored VM


def parse_duration(text: str | None, default: timedelta) -> timedelta:
    """A Go duration ("1m30s", "300ms", "2h"); `default` when absent or unreadable."""
    if not text:
        return default
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return timedelta(seconds=sum(float(n) * units[u] for n, u in parts))


def _condition(kind: str, status: str, reason: str) -> dict:
    return {"type": kind, "status": status, "reason": reason, "lastTransitionTime": now(), "lastProbeTime": None}


def content_name(snapshot: dict) -> str:
    return f"vmsnapshot-content-{snapshot['metadata']['uid']}"


def backed_up_volumes(vm: dict) -> tuple[list[str], list[str], list[dict]]:
    """(included, excluded, volumeBackups): PVC and DataVolume volumes are snapshotted, others not."""
    included, excluded, backups = [], [], []
    for volume in vm["spec"]["template"]["spec"].get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (volume.get("dataVolume") or {}).get(
            "name"
        )
        if claim is None:
            excluded.append(volume["name"])
            continue
        included.append(volume["name"])
        backups.append(
            {
                "volumeName": volume["name"],
                "persistentVolumeClaim": {"metadata": {"name": claim}, "spec": {}},
                "volumeSnapshotName": f"vmsnapshot-{vm['metadata']['uid']}-volume-{volume['name']}",
            }
        )
    return included, excluded, backups


def snapshot_content(snapshot: dict, vm: dict) -> dict:
    """The VirtualMachineSnapshotContent: a copy of the VM and its volume backups, owned by the
    snapshot unless `deletionPolicy: Retain`."""
    _, _, backups = backed_up_volumes(vm)
    meta = vm["metadata"]
    content: dict = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshotContent",
        "metadata": {"name": content_name(snapshot), "namespace": snapshot["metadata"]["namespace"]},
        "spec": {
            "virtualMachineSnapshotName": snapshot["metadata"]["name"],
            "source": {
                "virtualMachine": {
                    "metadata": {
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                        "generation": meta.get("generation", 1),
                        **({"labels": meta["labels"]} if meta.get("labels") else {}),
                        **({"annotations": meta["annotations"]} if meta.get("annotations") else {}),
                    },
                    "spec": copy.deepcopy(vm["spec"]),
                }
            },
            "volumeBackups": backups,
        },
    }
    if snapshot["spec"].get("deletionPolicy", "Delete") != "Retain":
        content["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "snapshot.kubevirt.io/v1beta1",
                "kind": "VirtualMachineSnapshot",
                "name": snapshot["metadata"]["name"],
                "uid": snapshot["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return content


def indications(snapshot: dict, vmi: dict | None) -> list[tuple[str, str]]:
    """source.go: Online, then GuestAgent / NoGuestAgent / Paused, then QuiesceTimeout if injected."""
    if vmi is None or ((vmi.get("status") or {}).get("phase")) != "Running":
        return []
    found = [("Online", "Snapshot taken while the VM was running")]
    if (condition_of(vmi, "Paused") or {}).get("status") == "True":
        found.append(("Paused", "The VM was paused: no filesystem freeze"))
    elif condition_of(vmi, "AgentConnected"):
        found.append(("GuestAgent", "The guest filesystems were frozen through the guest agent"))
    else:
        found.append(("NoGuestAgent", "No guest agent: the snapshot is not filesystem-consistent"))
    if (snapshot["metadata"].get("annotations") or {}).get(SNAPSHOT_ANNOTATION) == "quiesce-timeout":
        found.append(("QuiesceTimeout", "Quiesce timed out while freezing the guest filesystems"))
    return found


@dataclass
class SnapshotPlan:
    status: dict | None = None  # the snapshot's new status
    create_content: dict | None = None
    content_status: dict | None = None  # the content's status, when to set
    vm_in_progress: str | None | bool = False  # False: leave; None: clear; a name: set
    freeze: str | None = None  # "frozen" / "thawed" on the VMI, while an agent is connected
    requeue_after: float | None = None


def plan_snapshot(
    snapshot: dict, vm: dict | None, vmi: dict | None, content: dict | None, at: datetime
) -> SnapshotPlan:
    """One step of snapshot.go for this snapshot of `vm` (running as `vmi`, if any)."""
    plan = SnapshotPlan()
    status = copy.deepcopy(snapshot.get("status") or {})
    name = snapshot["metadata"]["name"]
    in_progress = ((vm or {}).get("status") or {}).get("snapshotInProgress")
    agent = condition_of(vmi, "AgentConnected") is not None
    if status.get("phase") in FINAL:
        _release(plan, name, in_progress, vmi, agent)
        return plan
    created = parse_time(snapshot["metadata"]["creationTimestamp"])
    deadline = created + parse_duration(snapshot["spec"].get("failureDeadline"), DEFAULT_FAILURE_DEADLINE)
    if at >= deadline:
        _expire(plan, status)
        plan.vm_in_progress = None if in_progress == name else False
    elif vm is None:
        status.update(
            {
                "phase": "InProgress",
                "readyToUse": False,
                "conditions": [
                    _condition("Progressing", "False", "Source does not exist"),
                    _condition("Ready", "False", "Not ready"),
                ],
            }
        )
        plan.status = status if _differs(snapshot, status) else None
        plan.requeue_after = (deadline - at).total_seconds()
    elif status.get("phase") is None:
        if in_progress and in_progress != name:
            plan.requeue_after = 1.0  # another snapshot holds the source
        else:
            _start(plan, status, snapshot, vm, vmi, agent)
    elif content is None:
        plan.create_content = snapshot_content(snapshot, vm)
    else:
        _complete(plan, status, snapshot, content, created, deadline, at, agent)
    return plan


def _release(plan: SnapshotPlan, name: str, in_progress: str | None, vmi: dict | None, agent: bool) -> None:
    if in_progress == name:
        plan.vm_in_progress = None
    if agent and ((vmi or {}).get("status") or {}).get("fsFreezeStatus") == "frozen":
        plan.freeze = "thawed"


def _expire(plan: SnapshotPlan, status: dict) -> None:
    status.update(
        {
            "phase": "Failed",
            "readyToUse": False,
            "error": {"time": now(), "message": "snapshot deadline exceeded"},
            "conditions": [
                _condition("Progressing", "False", "Operation failed"),
                _condition("Ready", "False", "Not ready"),
                _condition("Failure", "True", "snapshot deadline exceeded"),
            ],
        }
    )
    plan.status = status


def _start(plan: SnapshotPlan, status: dict, snapshot: dict, vm: dict, vmi: dict | None, agent: bool) -> None:
    """Lock the source (snapshotInProgress), freeze the guest when an agent answers, record what is taken."""
    included, excluded, _ = backed_up_volumes(vm)
    found = indications(snapshot, vmi)
    status.update(
        {
            "phase": "InProgress",
            "readyToUse": False,
            "sourceUID": vm["metadata"]["uid"],
            "virtualMachineSnapshotContentName": content_name(snapshot),
            "snapshotVolumes": {"includedVolumes": included, "excludedVolumes": excluded},
            "indications": [i for i, _ in found],
            "sourceIndications": [{"indication": i, "message": m} for i, m in found],
            "conditions": [
                _condition("Progressing", "True", "Source locked and operation in progress"),
                _condition("Ready", "False", "Not ready"),
            ],
        }
    )
    plan.status = status
    plan.vm_in_progress = snapshot["metadata"]["name"]
    if agent and "Paused" not in status["indications"]:
        plan.freeze = "frozen"


def _complete(
    plan: SnapshotPlan,
    status: dict,
    snapshot: dict,
    content: dict,
    created: datetime,
    deadline: datetime,
    at: datetime,
    agent: bool,
) -> None:
    """The volume snapshots are ready (at once here, unless a test holds or fails them)."""
    annotations = snapshot["metadata"].get("annotations") or {}
    if annotations.get(SNAPSHOT_ANNOTATION) == "fail":
        plan.requeue_after = (deadline - at).total_seconds()
        return
    hold = float(annotations.get(SNAPSHOT_SECONDS_ANNOTATION, "0") or 0)
    remaining = (created + timedelta(seconds=hold) - at).total_seconds()
    if remaining > 0:
        plan.requeue_after = remaining
        return
    stamp = now()
    if not (content.get("status") or {}).get("readyToUse"):
        plan.content_status = {
            "readyToUse": True,
            "creationTime": stamp,
            "volumeSnapshotStatus": [
                {"volumeSnapshotName": b["volumeSnapshotName"], "readyToUse": True, "creationTime": stamp}
                for b in content["spec"].get("volumeBackups") or []
            ],
        }
    status.update(
        {
            "phase": "Succeeded",
            "readyToUse": True,
            "creationTime": stamp,
            "conditions": [
                _condition("Progressing", "False", "Operation complete"),
                _condition("Ready", "True", "Ready"),
            ],
        }
    )
    plan.status = status
    plan.vm_in_progress = None
    if agent:
        plan.freeze = "thawed"


@dataclass
class RestorePlan:
    status: dict | None = None
    stop_target: bool = False  # StopTarget: halt the VM first
    vm_spec: dict | None = None  # the spec to restore into the target VM
    vm_in_progress: str | None | bool = False
    requeue_after: float | None = None
    restores: list[dict] = field(default_factory=list)


def restore_uid(restore: dict) -> str:
    return f"{restore['metadata']['name']}-{restore['metadata'].get('uid', '')}"


def _restore_status(status: dict, complete: bool, progressing: tuple[str, str], ready: tuple[str, str]) -> dict:
    status["complete"] = complete
    status["conditions"] = [_condition("Progressing", *progressing), _condition("Ready", *ready)]
    return status


def plan_restore(
    restore: dict, vm: dict | None, vmi: dict | None, snapshot: dict | None, content: dict | None, at: datetime
) -> RestorePlan:
    """restore.go: wait for (or stop) the target, then put the snapshot's VM spec back."""
    plan = RestorePlan()
    status = copy.deepcopy(restore.get("status") or {})
    name = restore["metadata"]["name"]
    if status.get("complete"):
        if ((vm or {}).get("status") or {}).get("restoreInProgress") == name:
            plan.vm_in_progress = None
        return plan
    if (condition_of(restore, "Failure") or {}).get("status") == "True":
        return plan
    policy = restore["spec"].get("targetReadinessPolicy", "WaitGracePeriod")
    if vm is not None and (vm["metadata"].get("annotations") or {}).get(LAST_RESTORE_ANNOTATION) == restore_uid(
        restore
    ):
        # restore.go: the target already carries this restore (its status write was lost or not seen yet).
        plan.status = _completed(status, content)
        plan.vm_in_progress = None
        return plan
    if vm is None or snapshot is None or content is None or not (snapshot.get("status") or {}).get("readyToUse"):
        waiting = "VirtualMachineSnapshot not ready" if vm is not None else "Target VirtualMachine does not exist"
        new = _restore_status(status, False, ("False", waiting), ("False", waiting))
        plan.status = new if _differs(restore, new) else None
        plan.requeue_after = 2.0
        return plan
    if vmi is not None:
        created = parse_time(restore["metadata"]["creationTimestamp"])
        if policy == "FailImmediate" or (policy == "WaitGracePeriod" and at >= created + DEFAULT_RESTORE_GRACE):
            message = "Restore target not ready: the VirtualMachine must be stopped (no VMI)"
            new = _restore_status(status, False, ("False", "Operation failed"), ("False", "Operation failed"))
            new["conditions"].append(_condition("Failure", "True", message))
            plan.status = new
            return plan
        if policy == "StopTarget":
            plan.stop_target = True
        new = _restore_status(
            status, False, ("True", "Waiting for target to be ready"), ("False", "Waiting for target to be ready")
        )
        plan.status = new if _differs(restore, new) else None
        plan.requeue_after = 2.0 if policy == "WaitGracePeriod" else None
        if policy == "WaitGracePeriod":
            plan.requeue_after = min(2.0, max((created + DEFAULT_RESTORE_GRACE - at).total_seconds(), 0.1))
        plan.vm_in_progress = name
        return plan
    source = content["spec"]["source"]["virtualMachine"]
    plan.vm_spec = copy.deepcopy(source["spec"])
    plan.vm_in_progress = None
    plan.status = _completed(status, content)
    return plan


def _completed(status: dict, content: dict | None) -> dict:
    new = _restore_status(status, True, ("False", "Operation complete"), ("True", "Operation complete"))
    new.setdefault("restoreTime", now())
    new["restores"] = [
        {
            "volumeName": b["volumeName"],
            "persistentVolumeClaim": b["persistentVolumeClaim"]["metadata"]["name"],
            "volumeSnapshotName": b.get("volumeSnapshotName", ""),
        }
        for b in ((content or {}).get("spec") or {}).get("volumeBackups") or []
    ]
    return new


def _differs(obj: dict, status: dict) -> bool:
    """Whether `status` says something new (condition times aside)."""

    def strip(s: dict) -> dict:
        out = dict(s)
        out["conditions"] = [
            {k: v for k, v in c.items() if k not in ("lastTransitionTime", "lastProbeTime")}
            for c in s.get("conditions", [])
        ]
        return out

    return strip(obj.get("status") or {}) != strip(status)
