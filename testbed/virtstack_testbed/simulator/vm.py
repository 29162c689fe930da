"""KubeVirt's VirtualMachine controller decisions (pure).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vm/vm.go: the runStrategy table decides
whether a VMI is created or deleted; status mirrors the VMI and derives printableStatus by a
first-match precedence list.
"""

from __future__ import annotations

from enum import Enum

from .clock import now

FINAL_PHASES = ("Succeeded", "Failed")
VM_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"


class Action(Enum):
    NONE = "none"
    CREATE_VMI = "create"
    DELETE_VMI = "delete"


def run_strategy(vm: dict) -> str:
    spec = vm["spec"]
    if "runStrategy" in spec:
        return spec["runStrategy"]
    return "Always" if spec.get("running") else "Halted"


def has_start_request(vm: dict) -> bool:
    return any(r.get("action") == "Start" for r in (vm.get("status") or {}).get("stateChangeRequests", []))


def vmi_action(vm: dict, vmi: dict | None) -> Action:
    """The runStrategy table of kubevirt-behaviour.md §1 (vm.go syncRunStrategy)."""
    strategy = run_strategy(vm)
    if vm["metadata"].get("deletionTimestamp"):
        return Action.DELETE_VMI if vmi is not None else Action.NONE
    if vmi is not None and vmi["metadata"].get("deletionTimestamp"):
        return Action.NONE
    phase = (vmi or {}).get("status", {}).get("phase")
    final = phase in FINAL_PHASES
    if strategy == "Halted":
        return Action.DELETE_VMI if vmi is not None else Action.NONE
    if strategy == "Always":
        if vmi is None:
            return Action.CREATE_VMI
        return Action.DELETE_VMI if final else Action.NONE
    if strategy == "Once":
        return Action.CREATE_VMI if vmi is None else Action.NONE
    if strategy == "Manual":
        return Action.CREATE_VMI if vmi is None and has_start_request(vm) else Action.NONE
    if strategy == "RerunOnFailure":
        if vmi is None:
            changed = (vm.get("status") or {}).get("runStrategy") != strategy
            return Action.CREATE_VMI if changed or has_start_request(vm) else Action.NONE
        return Action.DELETE_VMI if final else Action.NONE
    return Action.NONE


def vmi_from_vm(vm: dict) -> dict:
    """The VMI: same name, template labels/annotations, one controller ownerReference."""
    template = vm["spec"]["template"]
    meta = vm["metadata"]
    template_meta = template.get("metadata") or {}
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
            "ownerReferences": [
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachine",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": [VM_FINALIZER],
        },
        "spec": template["spec"],
    }


def _vmi_condition(vmi: dict | None, kind: str) -> dict | None:
    for condition in (vmi or {}).get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            return condition
    return None


def printable_status(vm: dict, vmi: dict | None) -> str:
    """First match wins, in vm.go's order (the subset of states the simulator can reach)."""
    phase = (vmi or {}).get("status", {}).get("phase")
    scheduled = _vmi_condition(vmi, "PodScheduled")
    table = [
        ("Terminating", lambda: bool(vm["metadata"].get("deletionTimestamp"))),
        (
            "Stopping",
            lambda: vmi is not None and bool(vmi["metadata"].get("deletionTimestamp")) and phase not in FINAL_PHASES,
        ),
        (
            "Migrating",
            lambda: (
                bool((vmi or {}).get("status", {}).get("migrationState", {}).get("startTimestamp"))
                and not vmi["status"]["migrationState"].get("endTimestamp")
            ),
        ),
        ("Running", lambda: phase == "Running"),
        (
            "ErrorUnschedulable",
            lambda: (
                scheduled is not None and scheduled["status"] == "False" and scheduled.get("reason") == "Unschedulable"
            ),
        ),
        (
            "Starting",
            lambda: (
                (vmi is not None and phase in (None, "Pending", "Scheduling", "Scheduled"))
                or (vmi is None and vmi_action(vm, None) is Action.CREATE_VMI)
            ),
        ),
        ("Stopped", lambda: vmi is None or phase in FINAL_PHASES),
    ]
    return next((status for status, matches in table if matches()), "Unknown")


def vm_status(vm: dict, vmi: dict | None) -> dict:
    """The VM's status: what the controller last saw of its VMI, conditions mirrored."""
    previous = vm.get("status") or {}
    ready = _vmi_condition(vmi, "Ready")
    conditions = [c for c in (vmi or {}).get("status", {}).get("conditions", []) if c["type"] != "Ready"]
    if vmi is None:
        ready_condition = {
            "type": "Ready",
            "status": "False",
            "reason": "VMINotExists",
            "message": "VMI does not exist",
        }
    elif ready is None:
        ready_condition = {
            "type": "Ready",
            "status": "False",
            "reason": "VMIConditionMissing",
            "message": "VMI is missing the Ready condition",
        }
    else:
        ready_condition = dict(ready)
    ready_condition = _keep_transition_time(previous, ready_condition)
    status = {
        "printableStatus": printable_status(vm, vmi),
        "ready": ready_condition["status"] == "True",
        "created": vmi is not None,
        "runStrategy": run_strategy(vm),
        "conditions": [ready_condition, *conditions],
        "observedGeneration": vm["metadata"].get("generation", 1),
        "desiredGeneration": vm["metadata"].get("generation", 1),
    }
    if previous.get("stateChangeRequests") and vmi is None:
        status["stateChangeRequests"] = previous["stateChangeRequests"]
    if not status["created"]:
        del status["created"]
    if not status["ready"]:
        del status["ready"]
    return status


def _keep_transition_time(previous: dict, condition: dict) -> dict:
    for old in previous.get("conditions", []):
        if old["type"] == condition["type"] and old["status"] == condition["status"]:
            return {**condition, "lastTransitionTime": old.get("lastTransitionTime"), "lastProbeTime": None}
    return {**condition, "lastTransitionTime": condition.get("lastTransitionTime") or now(), "lastProbeTime": None}
