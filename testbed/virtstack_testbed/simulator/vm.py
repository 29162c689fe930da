"""KubeVirt's VirtualMachine controller decisions (pure).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vm/vm.go: `syncRunStrategy` (the runStrategy
table with `status.stateChangeRequests`), `startVMI`'s start-failure back-off
(`syncStartFailureStatus`, `calculateStartBackoffTime`), `updateStatus`'s request trimming,
`syncRestartRequired`, `dataVolumeTemplates` (pkg/storage/types/dv.go: no VMI until they are ready)
and the printableStatus precedence of `setPrintableStatus`.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from virtstack.objects import condition_of

from .clock import now
from .hotplug import hotplug_defaults, plan_hotplug, without_hotplug_fields

FINAL_PHASES = ("Succeeded", "Failed")
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
LABEL_CREATED_BY = "kubevirt.io/created-by"
RUN_STRATEGIES = ("Always", "RerunOnFailure", "Once", "Manual", "Halted")
BACKOFF_STRATEGIES = ("Always", "RerunOnFailure", "Once")  # vm.go: start-failure back-off applies to these
MAX_START_DELAY_SECONDS = 300  # vm.go defaultMaxCrashLoopBackoffDelaySeconds
MIN_START_INTERVAL_SECONDS = 10
# dv.go: a VMI may start once every template DataVolume is in one of these phases.
DV_READY_PHASES = ("Succeeded", "WaitForFirstConsumer", "PendingPopulation")
RESTART_REQUIRED_MESSAGE = "a non-live-updatable field was changed in the template spec"
# Template fields KubeVirt applies to a running VMI under the LiveUpdate rollout strategy (the
# default since v1.6) without a restart: copied to the VMI spec as they change.
LIVE_UPDATE_FIELDS = ("nodeSelector", "affinity", "tolerations")


class Action(Enum):
    NONE = "none"
    CREATE_VMI = "create"
    DELETE_VMI = "delete"


def run_strategy(vm: dict) -> str:
    spec = vm["spec"]
    if "runStrategy" in spec:
        return spec["runStrategy"]
    return "Always" if spec.get("running") else "Halted"


def _requests(vm: dict) -> list[dict]:
    return list((vm.get("status") or {}).get("stateChangeRequests") or [])


def has_start_request(vm: dict) -> bool:
    return any(r.get("action") == "Start" for r in _requests(vm))


def has_stop_request_for(vm: dict, vmi: dict | None) -> bool:
    """vm.go hasStopRequestForVMI: the first request is a Stop naming this VMI's uid."""
    requests = _requests(vm)
    if vmi is None or not requests:
        return False
    first = requests[0]
    return first.get("action") == "Stop" and first.get("uid") == vmi["metadata"]["uid"]


def _phase(vmi: dict | None) -> str | None:
    return ((vmi or {}).get("status") or {}).get("phase")


def vmi_action(vm: dict, vmi: dict | None) -> Action:
    """The runStrategy table of kubevirt-behaviour.md §1 (vm.go syncRunStrategy), before back-off."""
    strategy = run_strategy(vm)
    if vm["metadata"].get("deletionTimestamp"):
        return Action.DELETE_VMI if vmi is not None else Action.NONE
    if vmi is None:
        return Action.CREATE_VMI if _starts_without_vmi(vm, strategy) else Action.NONE
    if vmi["metadata"].get("deletionTimestamp"):
        return Action.NONE
    final = _phase(vmi) in FINAL_PHASES
    stop = has_stop_request_for(vm, vmi)
    deletes = {
        "Halted": True,
        "Always": final or stop,  # then a new one is created
        "RerunOnFailure": final or stop,  # Failed: then a Start request restarts it
        "Once": stop,  # final VMIs are left in place
        "Manual": stop,
    }
    return Action.DELETE_VMI if deletes.get(strategy, False) else Action.NONE


def _starts_without_vmi(vm: dict, strategy: str) -> bool:
    if strategy in ("Always", "Once"):
        return True
    if strategy == "Manual":
        return has_start_request(vm)
    if strategy == "RerunOnFailure":
        return (vm.get("status") or {}).get("runStrategy") != strategy or has_start_request(vm)
    return False


def trim_requests(vm: dict, vmi: dict | None) -> list[dict]:
    """vm.go updateStatus: only the first request is considered; it is dropped once served.

    Stop is served when no VMI exists or the VMI has another uid (or the request has none);
    Start is served once a VMI exists (one not being deleted).
    """
    requests = _requests(vm)
    if not requests:
        return requests
    first = requests[0]
    served = False
    if first.get("action") == "Stop":
        served = vmi is None or not first.get("uid") or first["uid"] != vmi["metadata"]["uid"]
    elif first.get("action") == "Start":
        # A VMI still being deleted is the one stopped before this start, not its result.
        served = vmi is not None and not vmi["metadata"].get("deletionTimestamp")
    return requests[1:] if served else requests


# --- start failures ---------------------------------------------------------------------------


def failed_early(vmi: dict | None) -> bool:
    """vm.go vmiFailedEarly: Failed without ever having been Running."""
    if _phase(vmi) != "Failed":
        return False
    return not any(t.get("phase") == "Running" for t in vmi["status"].get("phaseTransitionTimestamps", []))


def start_failure_delay(count: int, jitter: float, scale: float = 1.0) -> float:
    """vm.go calculateStartBackoffTime: 10 s x count^2 plus up to half of it at random, capped at 300 s.

    `jitter` in [0, 1) stands for the random draw; `scale` is the testbed's speed-up (1 = KubeVirt).
    """
    count = max(count, 1)
    interval = max(MAX_START_DELAY_SECONDS // 30, MIN_START_INTERVAL_SECONDS)
    delay = interval * count**2
    delay += int(jitter * (delay // 2 + 1))
    return min(delay, MAX_START_DELAY_SECONDS) * scale


def start_failure(vm: dict, vmi: dict | None, at: datetime, jitter: float, scale: float = 1.0) -> dict | None:
    """vm.go syncStartFailureStatus: count VMIs that failed before running; clear once one runs."""
    previous = (vm.get("status") or {}).get("startFailure")
    if run_strategy(vm) not in BACKOFF_STRATEGIES:
        return None
    if _phase(vmi) == "Running":
        return None
    if not failed_early(vmi):
        return previous
    uid = vmi["metadata"]["uid"]
    if previous and previous.get("lastFailedVMIUID") == uid:
        return previous
    count = (previous or {}).get("consecutiveFailCount", 0) + 1
    retry = at + timedelta(seconds=start_failure_delay(count, jitter, scale))
    retry = retry.replace(microsecond=0) + timedelta(seconds=1 if retry.microsecond else 0)
    return {
        "consecutiveFailCount": count,
        "lastFailedVMIUID": uid,
        "retryAfterTimestamp": retry.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def backoff_remaining(failure: dict | None, at: datetime) -> float:
    """Seconds until a new VMI may start (vm.go startVMI waits out retryAfterTimestamp)."""
    if not failure or not failure.get("retryAfterTimestamp"):
        return 0.0
    retry = datetime.strptime(failure["retryAfterTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=at.tzinfo)
    return max((retry - at).total_seconds(), 0.0)


# --- DataVolume templates ---------------------------------------------------------------------


def data_volumes_from_vm(vm: dict) -> list[dict]:
    """Each dataVolumeTemplates[] entry as a DataVolume of the same name, controller-owned by the VM."""
    meta = vm["metadata"]
    volumes = []
    for template in vm["spec"].get("dataVolumeTemplates") or []:
        template_meta = template.get("metadata") or {}
        volumes.append(
            {
                "apiVersion": "cdi.kubevirt.io/v1beta1",
                "kind": "DataVolume",
                "metadata": {
                    "name": template_meta["name"],
                    "namespace": meta["namespace"],
                    "labels": {**(template_meta.get("labels") or {}), LABEL_CREATED_BY: meta["uid"]},
                    **({"annotations": template_meta["annotations"]} if template_meta.get("annotations") else {}),
                    "ownerReferences": [_owner(vm)],
                },
                "spec": copy.deepcopy(template["spec"]),
            }
        )
    return volumes


def template_dv_names(vm: dict) -> list[str]:
    return [t["metadata"]["name"] for t in vm["spec"].get("dataVolumeTemplates") or []]


def data_volumes_ready(vm: dict, dvs: dict[str, dict]) -> bool:
    return all(_dv_phase(dvs.get(name)) in DV_READY_PHASES for name in template_dv_names(vm))


def _dv_phase(dv: dict | None) -> str | None:
    return ((dv or {}).get("status") or {}).get("phase")


def vm_data_volume_names(vm: dict) -> list[str]:
    """The DataVolumes the VM's volumes use (templates and pre-existing ones)."""
    volumes = vm["spec"]["template"]["spec"].get("volumes") or []
    names = [v["dataVolume"]["name"] for v in volumes if v.get("dataVolume")]
    return list(dict.fromkeys([*template_dv_names(vm), *names]))


# --- RestartRequired and live updates ---------------------------------------------------------


def restart_required(vm: dict, started_spec: dict | None) -> bool:
    """vm.go syncRestartRequired: the template differs from the one the VMI started from, in a
    field that cannot be applied live (LIVE_UPDATE_FIELDS can)."""
    if started_spec is None:
        return False
    current = without_hotplug_fields(_without_live_fields(vm["spec"]["template"].get("spec") or {}))
    started = without_hotplug_fields(_without_live_fields(((started_spec.get("template") or {}).get("spec")) or {}))
    return current != started


def _without_live_fields(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k not in LIVE_UPDATE_FIELDS}


def live_update_patch(vm: dict, vmi: dict | None) -> dict | None:
    """The VMI spec fields to bring in line with the template live (nodeSelector, affinity, tolerations)."""
    if vmi is None or _phase(vmi) in FINAL_PHASES or vmi["metadata"].get("deletionTimestamp"):
        return None
    template = vm["spec"]["template"].get("spec") or {}
    patch = {f: template.get(f) for f in LIVE_UPDATE_FIELDS if template.get(f) != vmi["spec"].get(f)}
    return patch or None


# --- the VMI ----------------------------------------------------------------------------------


def revision_name(vm: dict) -> str:
    """vm.go createVMRevision: the ControllerRevision holding the VM spec a VMI starts from."""
    return f"revision-start-vm-{vm['metadata']['uid']}-{vm['metadata'].get('generation', 1)}"


def controller_revision(vm: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(vm),
            "namespace": vm["metadata"]["namespace"],
            "ownerReferences": [_owner(vm)],
        },
        "data": {"spec": copy.deepcopy(vm["spec"])},
        "revision": vm["metadata"].get("generation", 1),
    }


def firmware_uuid(name: str) -> str:
    """A stable firmware UUID derived from the VM's name (KubeVirt: uuid5 of the name)."""
    return str(uuid.UUID(bytes=hashlib.sha1(name.encode()).digest()[:16], version=5))


def vmi_from_vm(vm: dict) -> dict:
    """The VMI: same name, template labels/annotations, one controller ownerReference, finalizer."""
    template = vm["spec"]["template"]
    meta = vm["metadata"]
    template_meta = template.get("metadata") or {}
    spec = hotplug_defaults(copy.deepcopy(template["spec"]))
    firmware = spec.setdefault("domain", {}).setdefault("firmware", {})
    firmware.setdefault("uuid", firmware_uuid(meta["name"]))
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(template_meta.get("labels") or {}),
            "annotations": {
                **(template_meta.get("annotations") or {}),
                "kubevirt.io/vm-generation": str(meta.get("generation", 1)),
            },
            "ownerReferences": [_owner(vm)],
            "finalizers": [VM_FINALIZER],
        },
        "spec": spec,
        "status": {"virtualMachineRevisionName": revision_name(vm)},
    }


def _owner(vm: dict) -> dict:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "name": vm["metadata"]["name"],
        "uid": vm["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# --- status -----------------------------------------------------------------------------------


def _condition_is(vmi: dict | None, kind: str, status: str, reasons: tuple[str, ...] | None = None) -> bool:
    condition = condition_of(vmi, kind)
    return (
        condition is not None
        and condition["status"] == status
        and (reasons is None or condition.get("reason") in reasons)
    )


def printable_status(
    vm: dict,
    vmi: dict | None,
    dvs: dict[str, dict] | None = None,
    creating: bool | None = None,
    failure: dict | None = None,
) -> str:
    """First match wins, in vm.go setPrintableStatus's order.

    `dvs`: the VM's DataVolumes by name; `creating`: a VMI creation is expected (KubeVirt's
    expectations; by default, whether the runStrategy table would create one now); `failure`:
    the startFailure being written.
    """
    dvs = dvs or {}
    phase = _phase(vmi)
    final = phase in FINAL_PHASES
    if creating is None:
        creating = vmi is None and vmi_action(vm, None) is Action.CREATE_VMI
    if failure is None:
        failure = (vm.get("status") or {}).get("startFailure")
    migration = ((vmi or {}).get("status") or {}).get("migrationState") or {}
    volumes = [dvs.get(name) for name in vm_data_volume_names(vm)]
    table = [
        ("Terminating", lambda: bool(vm["metadata"].get("deletionTimestamp"))),
        ("Stopping", lambda: vmi is not None and bool(vmi["metadata"].get("deletionTimestamp")) and not final),
        ("Migrating", lambda: bool(migration.get("startTimestamp")) and not migration.get("endTimestamp")),
        ("Paused", lambda: phase == "Running" and _condition_is(vmi, "Paused", "True")),
        ("Running", lambda: phase == "Running"),
        ("ErrorPvcNotFound", lambda: _condition_is(vmi, "Synchronized", "False", ("FailedPvcNotFound",))),
        ("DataVolumeError", lambda: any(dv is not None and _dv_error(dv) for dv in volumes)),
        ("ErrorUnschedulable", lambda: _condition_is(vmi, "PodScheduled", "False", ("Unschedulable",))),
        ("Provisioning", lambda: any(_dv_phase(dv) not in DV_READY_PHASES for dv in volumes)),
        ("ErrImagePull", lambda: _condition_is(vmi, "Synchronized", "False", ("ErrImagePull",))),
        ("ImagePullBackOff", lambda: _condition_is(vmi, "Synchronized", "False", ("ImagePullBackOff",))),
        (
            "Starting",
            lambda: (vmi is not None and phase in (None, "Pending", "Scheduling", "Scheduled")) or creating,
        ),
        (
            "CrashLoopBackOff",
            lambda: (
                (vmi is None or final)
                and bool(failure)
                and failure.get("consecutiveFailCount", 0) > 0
                and run_strategy(vm) not in ("Halted", "Manual")
            ),
        ),
        ("Stopped", lambda: vmi is None or final),
    ]
    return next((status for status, matches in table if matches()), "Unknown")


def _dv_error(dv: dict) -> bool:
    """vm.go: a Failed DataVolume, or one whose importer keeps failing (Running=False, Error/ImagePullFailed)."""
    if _dv_phase(dv) == "Failed":
        return True
    running = condition_of(dv, "Running")
    return bool(running) and running["status"] == "False" and running.get("reason") in ("Error", "ImagePullFailed")


@dataclass
class VmPlan:
    """What the VM controller does in one sync; the glue carries it out in this order."""

    create_dvs: list[dict] = field(default_factory=list)
    action: Action = Action.NONE
    delete_uid: str | None = None  # the VMI to delete, as a precondition
    vmi_spec_patch: dict | None = None  # live updates of the running VMI
    status: dict = field(default_factory=dict)
    requeue_after: float | None = None  # wake up when a start back-off expires


def plan_vm(
    vm: dict,
    vmi: dict | None,
    dvs: dict[str, dict],
    started_spec: dict | None,
    at: datetime,
    jitter: float = 0.0,
    scale: float = 1.0,
) -> VmPlan:
    """One sync of vm.go for a VM that is not being deleted.

    `vmi`: the VM's own VMI (or None); `dvs`: DataVolumes by name; `started_spec`: the VM spec the
    VMI started from (its ControllerRevision), `at`: now; `jitter`: the back-off's random draw.
    """
    plan = VmPlan()
    existing = set(dvs)
    plan.create_dvs = [dv for dv in data_volumes_from_vm(vm) if dv["metadata"]["name"] not in existing]
    failure = start_failure(vm, vmi, at, jitter, scale)
    action = vmi_action(vm, vmi)
    if action is Action.CREATE_VMI:
        wait = backoff_remaining(failure, at) if run_strategy(vm) in BACKOFF_STRATEGIES else 0.0
        if not data_volumes_ready(vm, dvs):
            action = Action.NONE  # dv.go: no VMI until every template DataVolume is ready
        elif wait > 0:
            action = Action.NONE
            plan.requeue_after = wait
    if action is Action.DELETE_VMI:
        plan.delete_uid = vmi["metadata"]["uid"]
    plan.action = action
    requests = trim_requests(vm, vmi)
    if action is Action.DELETE_VMI and run_strategy(vm) == "RerunOnFailure" and _phase(vmi) == "Failed":
        requests = [*requests, {"action": "Start"}]  # vm.go: RerunOnFailure restarts a failed VMI
    started = started_spec if vmi is not None and not vmi["metadata"].get("deletionTimestamp") else None
    restart = RESTART_REQUIRED_MESSAGE if restart_required(vm, started) and _phase(vmi) not in FINAL_PHASES else None
    if restart is None:
        plan.vmi_spec_patch = live_update_patch(vm, vmi)
        if _phase(vmi) == "Running" and started is not None:
            migratable = _condition_is(vmi, "LiveMigratable", "True")
            domain, restart = plan_hotplug(vm["spec"]["template"].get("spec") or {}, vmi, migratable)
            if domain:
                plan.vmi_spec_patch = {**(plan.vmi_spec_patch or {}), "domain": domain}
    plan.status = vm_status(
        vm, vmi, dvs, creating=action is Action.CREATE_VMI, failure=failure, requests=requests, restart=restart
    )
    return plan


def vm_status(
    vm: dict,
    vmi: dict | None,
    dvs: dict[str, dict] | None = None,
    creating: bool | None = None,
    failure: dict | None = None,
    requests: list[dict] | None = None,
    restart: str | None = None,
) -> dict:
    """The VM's status: what the controller last saw of its VMI, conditions mirrored."""
    previous = vm.get("status") or {}
    conditions = [c for c in ((vmi or {}).get("status") or {}).get("conditions", []) if c["type"] != "Ready"]
    ready_condition = _keep_transition_time(previous, _ready_condition(vmi))
    if restart:
        conditions.append(
            _keep_transition_time(previous, {"type": "RestartRequired", "status": "True", "message": restart})
        )
    status = {
        "printableStatus": printable_status(vm, vmi, dvs, creating, failure),
        "ready": ready_condition["status"] == "True",
        "created": vmi is not None,
        "runStrategy": run_strategy(vm),
        "conditions": [ready_condition, *conditions],
        "observedGeneration": vm["metadata"].get("generation", 1),
        "desiredGeneration": vm["metadata"].get("generation", 1),
    }
    if requests is None:
        requests = _requests(vm)
    if requests:
        status["stateChangeRequests"] = requests
    if failure:
        status["startFailure"] = failure
    if not status["created"]:
        del status["created"]
    if not status["ready"]:
        del status["ready"]
    for kept in ("volumeSnapshotStatuses", "snapshotInProgress", "restoreInProgress"):
        if kept in previous:
            status[kept] = previous[kept]  # written by other controllers
    return status


def _ready_condition(vmi: dict | None) -> dict:
    """vm.go: Ready mirrors the VMI's; False with VMINotExists / VMIConditionMissing otherwise."""
    if vmi is None:
        return {"type": "Ready", "status": "False", "reason": "VMINotExists", "message": "VMI does not exist"}
    ready = condition_of(vmi, "Ready")
    if ready is None:
        return {
            "type": "Ready",
            "status": "False",
            "reason": "VMIConditionMissing",
            "message": "VMI is missing the Ready condition",
        }
    return dict(ready)


def _keep_transition_time(previous: dict, condition: dict) -> dict:
    for old in previous.get("conditions", []):
        if old["type"] == condition["type"] and old["status"] == condition["status"]:
            return {**condition, "lastTransitionTime": old.get("lastTransitionTime"), "lastProbeTime": None}
    return {**condition, "lastTransitionTime": condition.get("lastTransitionTime") or now(), "lastProbeTime": None}
