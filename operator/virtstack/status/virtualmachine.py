"""A virtstack VirtualMachine's status, computed from what KubeVirt reports (pure).

`Ready` means the VM is in the power state its spec asks for, computed for the current
generation: True for a VM that runs as asked and for one stopped as asked.
"""

from __future__ import annotations

from ..api.conditions import Condition, ConditionStatus, merge_conditions, utc_now
from ..api.virtualmachine import PowerState, VirtualMachineSpec, VirtualMachineStatus, VMState
from ..builders.kubevirt_vm import run_strategy

READY = "Ready"
SCHEDULED = "Scheduled"
NOT_IMPLEMENTED = "NotImplemented"

# Fields the operator does not carry out yet. A VM that sets one is not created (rather than
# created without it) and says which, so nothing is silently ignored.
_NOT_YET_RECONCILED = (
    "displayName",
    "hostname",
    "group",
    "osType",
    "highAvailability",
    "dynamicScaling",
    "attachedISO",
    "sshKeyPairs",
    "userData",
    "affinityGroups",
    "gpu",
    "placement",
    "expose",
    "rebootRequestedAt",
    "reinstallRequestedAt",
    "migration",
)


def unsupported_fields(spec: VirtualMachineSpec) -> list[str]:
    """Spec fields set to something the operator cannot carry out yet."""
    fields = [f"spec.{name}" for name in _NOT_YET_RECONCILED if name in spec.model_fields_set and getattr(spec, name)]
    if spec.source.iso is not None:
        fields.append("spec.source.iso")
    if spec.rootDisk.resetOnReboot:
        fields.append("spec.rootDisk.resetOnReboot")
    return fields


def not_implemented_status(
    generation: int, fields: list[str], previous: VirtualMachineStatus, now: str | None = None
) -> VirtualMachineStatus:
    ready = Condition(
        type=READY,
        status=ConditionStatus.FALSE,
        reason=NOT_IMPLEMENTED,
        message=f"not created: this version of virtstack does not carry out {', '.join(fields)} yet; "
        "remove them to create the VM",
        observedGeneration=generation,
        lastTransitionTime=now or utc_now(),
    )
    return VirtualMachineStatus(
        state=VMState.ERROR, observedGeneration=generation, conditions=merge_conditions(previous.conditions, [ready])
    )


# KubeVirt's printableStatus -> CloudStack's state (kubevirt-behaviour.md §1).
_STATE_BY_PRINTABLE_STATUS = {
    "Running": VMState.RUNNING,
    "Starting": VMState.STARTING,
    "Provisioning": VMState.STARTING,
    "WaitingForVolumeBinding": VMState.STARTING,
    "ErrorUnschedulable": VMState.STARTING,
    "Stopping": VMState.STOPPING,
    "Terminating": VMState.DESTROYING,
    "Stopped": VMState.STOPPED,
    "Migrating": VMState.MIGRATING,
    "Paused": VMState.RUNNING,
}


def compute_status(
    generation: int,
    spec: VirtualMachineSpec,
    kubevirt_vm: dict | None,
    vmi: dict | None,
    previous: VirtualMachineStatus,
    now: str | None = None,
) -> VirtualMachineStatus:
    now = now or utc_now()
    state = _state(spec, kubevirt_vm)
    in_sync = (
        kubevirt_vm is not None
        and kubevirt_vm["spec"].get("runStrategy") == run_strategy(spec)
        and (kubevirt_vm.get("status", {}).get("runStrategy") == run_strategy(spec))
    )
    running_vmi = vmi if vmi is not None and (vmi.get("status") or {}).get("nodeName") else None
    conditions = [_ready(spec, state, in_sync, generation, now)]
    scheduled = _scheduled(spec, kubevirt_vm, vmi, generation, now)
    if scheduled is not None:
        conditions.append(scheduled)
    return VirtualMachineStatus(
        state=state,
        host=running_vmi["status"]["nodeName"] if running_vmi and state is not VMState.STOPPED else None,
        ipAddresses=_ip_addresses(running_vmi) if state is not VMState.STOPPED else [],
        observedGeneration=generation,
        conditions=merge_conditions(previous.conditions, conditions),
    )


def _state(spec: VirtualMachineSpec, kubevirt_vm: dict | None) -> VMState:
    if kubevirt_vm is None:
        return VMState.CREATING
    printable = (kubevirt_vm.get("status") or {}).get("printableStatus", "Stopped")
    state = _STATE_BY_PRINTABLE_STATUS.get(printable, VMState.ERROR)
    if spec.state is PowerState.STOPPED and state in (VMState.RUNNING, VMState.STARTING):
        return VMState.STOPPING
    if spec.state is PowerState.RUNNING and state is VMState.STOPPED:
        return VMState.STARTING
    return state


def _ready(spec: VirtualMachineSpec, state: VMState, in_sync: bool, generation: int, now: str) -> Condition:
    wanted = VMState.RUNNING if spec.state is PowerState.RUNNING else VMState.STOPPED
    if in_sync and state is wanted:
        status, reason, message = ConditionStatus.TRUE, state.value, f"the VM is {state.value.lower()} as asked"
    elif state is VMState.ERROR:
        status, reason, message = (
            ConditionStatus.FALSE,
            "Error",
            "KubeVirt reports an error; see the KubeVirt VM's status",
        )
    else:
        status, reason, message = (
            ConditionStatus.FALSE,
            state.value,
            f"the VM is {state.value.lower()}; wanted {wanted.value}",
        )
    return Condition(
        type=READY, status=status, reason=reason, message=message, observedGeneration=generation, lastTransitionTime=now
    )


def _scheduled(
    spec: VirtualMachineSpec, kubevirt_vm: dict | None, vmi: dict | None, generation: int, now: str
) -> Condition | None:
    if spec.state is not PowerState.RUNNING or vmi is None:
        return None
    pod_scheduled = next(
        (c for c in (vmi.get("status") or {}).get("conditions", []) if c["type"] == "PodScheduled"), None
    )
    if pod_scheduled is not None and pod_scheduled.get("status") == "False":
        return Condition(
            type=SCHEDULED,
            status=ConditionStatus.FALSE,
            reason="InsufficientCapacity",
            message=pod_scheduled.get("message") or "no host can run the VM",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    if (vmi.get("status") or {}).get("nodeName"):
        return Condition(
            type=SCHEDULED,
            status=ConditionStatus.TRUE,
            reason="Scheduled",
            message=f"placed on {vmi['status']['nodeName']}",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    return None


def _ip_addresses(vmi: dict | None) -> list[str]:
    if vmi is None:
        return []
    return [i["ipAddress"] for i in vmi["status"].get("interfaces", []) if i.get("ipAddress")]
