"""A virtstack VirtualMachine's status, computed from what KubeVirt reports (pure).

`Ready` means the VM is in the power state its spec asks for, computed for the current
generation: True for a VM that runs as asked and for one stopped as asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.conditions import Condition, ConditionStatus, condition_in, merge_conditions, utc_now
from ..api.virtualmachine import PowerState, VirtualMachineSpec, VirtualMachineStatus, VMState
from ..builders.access import KeysDelivery
from ..builders.kubevirt_vm import reboot_pending, root_disk_name, run_strategy
from ..builders.rootdisk import RootDiskPlan
from ..objects import condition_of
from .capacity import CAPACITY_LIMIT, unscheduled_conditions
from .migration import MigrationObserved, migrated, migrating_condition, migration_running
from .quota import QUOTA_EXCEEDED, launcher_refusal
from .reinstall import reinstall_pending
from .resize import resize_condition

READY = "Ready"
SCHEDULED = "Scheduled"
RESTART_REQUIRED = "RestartRequired"
AFFINITY_GROUPS = "AffinityGroups"
USER_DATA_INVALID = "UserDataInvalid"
REFUSED = "RefusedByAPIServer"
GPU_PROFILE_MISSING = "GPUProfileMissing"
SSH_KEY_PAIR_PROBLEM = "SSHKeyPairNotReady"
SSH_KEYS = "SSHKeys"
SNAPSHOTS_EXIST = "VMSnapshotsExist"

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
    "DataVolumeError": VMState.STARTING,  # CDI keeps retrying the import: the VM is still on its way
}
# printableStatus values that say why a VM is still Starting, and what to look at.
_WAITING_FOR_DISK = {
    "Provisioning": ("Provisioning", "CDI is preparing the root disk (DataVolume {disk})"),
    "DataVolumeError": (
        "RootDiskImportFailing",
        "the root disk import keeps failing and CDI keeps retrying: "
        "see the Running condition of DataVolume {disk} (kubectl describe dv {disk})",
    ),
}


@dataclass(frozen=True)
class Observed:
    """What the controller saw of the VM's world, gathered before computing."""

    kubevirt_vm: dict | None
    vmi: dict | None
    instance_name: str
    zone: str | None = None
    public_address: str | None = None
    host_down_for: float | None = None  # seconds the VM's host has not reported, once it counts as down
    resize_held: bool = False  # a dynamic resize waits: the guest agent is not connected
    missing_groups: list[str] = field(default_factory=list)  # listed AffinityGroups that do not exist
    groups_pending: str | None = None  # how the running VMI's AffinityGroups differ: applies at the next start
    keys: tuple[KeysDelivery, str] = (KeysDelivery.AT_BOOT, "")  # the running guest and the listed SSH keys
    vm_name: str = ""
    capacity_wait: str | None = None  # why the (N-1) capacity limit holds the start back
    migration: MigrationObserved | None = None  # the current migration request, when there is one
    root_disk: RootDiskPlan | None = None  # what the root disk is made from, and whether it is being replaced
    workload_updates: list[dict] = field(default_factory=list)  # KubeVirt's hotplug migrations of the VMI
    reverting_to: str | None = None  # the VMSnapshot a running revert holds the VM halted for


def compute_status(
    generation: int,
    spec: VirtualMachineSpec,
    observed: Observed,
    previous: VirtualMachineStatus,
    now: str | None = None,
) -> VirtualMachineStatus:
    now = now or utc_now()
    kubevirt_vm, vmi = observed.kubevirt_vm, observed.vmi
    state = VMState.DOWN if observed.host_down_for is not None else _state(spec, kubevirt_vm, vmi)
    if state is VMState.RUNNING and migration_running(observed.migration):
        state = VMState.MIGRATING  # KubeVirt says Migrating only from the handoff; the VMIM runs from its creation
    in_sync = (
        kubevirt_vm is not None
        and kubevirt_vm["spec"].get("runStrategy") == run_strategy(spec)
        and kubevirt_vm.get("status", {}).get("runStrategy") == run_strategy(spec)
    )
    # A VM on a down host still reports that host: it says where the VM was lost.
    placed = observed.host_down_for is not None or state in (
        VMState.RUNNING,
        VMState.STARTING,
        VMState.STOPPING,
        VMState.MIGRATING,
    )
    host = (vmi or {}).get("status", {}).get("nodeName") if placed else None
    printable = ((kubevirt_vm or {}).get("status") or {}).get("printableStatus")
    disk = root_disk_name(observed.vm_name)
    ready = (
        _reverting(observed.reverting_to, generation, now)
        if observed.reverting_to is not None
        else _ready(spec, state, vmi, in_sync, generation, now, observed.host_down_for, printable, disk)
    )
    conditions = _ready_and_scheduled(ready, spec, observed, generation, now)
    if (size := _size(spec, observed, generation, now)) is not None:
        conditions.append(size)
    if spec.affinityGroups:
        conditions.append(_affinity_groups(observed.missing_groups, observed.groups_pending, generation, now))
    if spec.sshKeyPairs:
        conditions.append(_ssh_keys(*observed.keys, generation, now))
    if observed.migration is not None:
        conditions.append(migrating_condition(observed.migration, generation, now))
    if observed.root_disk is not None:
        conditions.append(reinstall_pending(observed.root_disk, generation, now))
    return VirtualMachineStatus(
        state=state,
        lastRebootedAt=spec.rebootRequestedAt if _rebooted(spec, vmi) else previous.lastRebootedAt,
        lastMigratedAt=spec.migration.requestedAt if migrated(observed.migration) else previous.lastMigratedAt,
        lastReinstalledAt=(
            spec.reinstallRequestedAt
            if observed.root_disk is not None and observed.root_disk.reinstalled
            else previous.lastReinstalledAt
        ),
        instanceName=observed.instance_name,
        host=host,
        zone=observed.zone if host else None,
        ipAddresses=_ip_addresses(vmi) if host else [],
        publicAddress=observed.public_address,
        observedGeneration=generation,
        conditions=merge_conditions(previous.conditions, conditions),
    )


def _ready_and_scheduled(
    ready: Condition, spec: VirtualMachineSpec, observed: Observed, generation: int, now: str
) -> list[Condition]:
    """Ready, and Scheduled once there is something to say about placement; a VM held back before
    any host is chosen (the capacity limit, a refused launcher pod) says why in both."""
    if observed.capacity_wait is not None:
        return list(unscheduled_conditions(ready, CAPACITY_LIMIT, observed.capacity_wait))
    if (refusal := launcher_refusal(spec, observed.vmi)) is not None:
        return list(unscheduled_conditions(ready, *refusal))
    scheduled = _scheduled(spec, observed.vmi, generation, now)
    return [ready] if scheduled is None else [ready, scheduled]


def _size(spec: VirtualMachineSpec, observed: Observed, generation: int, now: str) -> Condition | None:
    """RestartRequired when a change waits for the next start; otherwise how a live resize went."""
    restart = _restart_required(observed, generation, now)
    return restart or resize_condition(spec, observed.vmi, observed.workload_updates, generation, now)


def _rebooted(spec: VirtualMachineSpec, vmi: dict | None) -> bool:
    """The latest reboot request is carried out: a VMI started under it runs, or there is nothing to reboot."""
    if spec.rebootRequestedAt is None:
        return False
    if vmi is None:
        return spec.state is PowerState.STOPPED
    return not reboot_pending(spec, vmi) and not vmi["metadata"].get("deletionTimestamp")


def blocked_status(
    generation: int,
    reason: str,
    message: str,
    previous: VirtualMachineStatus,
    instance_name: str,
    now: str | None = None,
    waiting: bool = False,
) -> VirtualMachineStatus:
    """A VM the operator will not create or change until something is fixed or ready; the message says what.

    A VM never built is in Error when the user must fix something, and still Creating when it only
    waits for something on its way (an ISO being downloaded).
    """
    state = previous.state
    if state in (None, VMState.CREATING, VMState.ERROR):
        state = VMState.CREATING if waiting else VMState.ERROR
    ready = Condition(
        type=READY,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observedGeneration=generation,
        lastTransitionTime=now or utc_now(),
    )
    return VirtualMachineStatus(
        state=state,
        instanceName=instance_name,
        lastRebootedAt=previous.lastRebootedAt,
        lastReinstalledAt=previous.lastReinstalledAt,
        lastMigratedAt=previous.lastMigratedAt,
        observedGeneration=generation,
        conditions=merge_conditions(previous.conditions, [ready]),
    )


def _state(spec: VirtualMachineSpec, kubevirt_vm: dict | None, vmi: dict | None) -> VMState:
    if kubevirt_vm is None:
        return VMState.CREATING
    phase = (vmi or {}).get("status", {}).get("phase")
    if spec.state is PowerState.RUNNING and vmi is not None and not vmi["metadata"].get("deletionTimestamp"):
        # An ended VMI that KubeVirt keeps (run strategy Once): the guest shut down, or it died.
        if phase == "Succeeded":
            return VMState.STOPPED
        if phase == "Failed":
            return VMState.DOWN
    printable = (kubevirt_vm.get("status") or {}).get("printableStatus", "Stopped")
    state = _STATE_BY_PRINTABLE_STATUS.get(printable, VMState.ERROR)
    if spec.state is PowerState.STOPPED and state in (VMState.RUNNING, VMState.STARTING):
        return VMState.STOPPING
    if spec.state is PowerState.RUNNING and state is VMState.STOPPED:
        return VMState.STARTING
    return state


def _ready(
    spec: VirtualMachineSpec,
    state: VMState,
    vmi: dict | None,
    in_sync: bool,
    generation: int,
    now: str,
    host_down_for: float | None = None,
    printable: str | None = None,
    disk: str = "",
) -> Condition:
    wanted = VMState.RUNNING if spec.state is PowerState.RUNNING else VMState.STOPPED
    restart = "set spec.rebootRequestedAt to now, or spec.state to Stopped and back to Running, to start it again"
    if host_down_for is not None:
        host = (vmi or {}).get("status", {}).get("nodeName")
        then = "restarting it on another host (HA)" if spec.highAvailability else f"it stays down: {restart}"
        status, reason = ConditionStatus.FALSE, "HostDown"
        message = f"host {host} has not reported for {int(host_down_for)} s; {then}"
    elif in_sync and state is wanted:
        status, reason, message = ConditionStatus.TRUE, state.value, f"the VM is {state.value.lower()} as asked"
    elif state is VMState.DOWN:
        why = (vmi or {}).get("status", {}).get("reason") or "the VM stopped unexpectedly"
        status, reason, message = ConditionStatus.FALSE, "Down", f"the VM is down ({why}); {restart}"
    elif state is VMState.STOPPED and wanted is VMState.RUNNING and vmi is not None:
        status, reason, message = ConditionStatus.FALSE, "GuestShutdown", f"the guest shut itself down; {restart}"
    elif state is VMState.STARTING and printable in _WAITING_FOR_DISK:
        reason, template = _WAITING_FOR_DISK[printable]
        status, message = ConditionStatus.FALSE, template.format(disk=disk)
    elif state is VMState.ERROR:
        status, reason, message = (
            ConditionStatus.FALSE,
            "Error",
            "KubeVirt reports an error; see the KubeVirt VM's status",
        )
    else:
        status, reason = ConditionStatus.FALSE, state.value
        message = f"the VM is {state.value.lower()}; wanted {wanted.value}"
    return Condition(
        type=READY, status=status, reason=reason, message=message, observedGeneration=generation, lastTransitionTime=now
    )


def _reverting(snapshot: str, generation: int, now: str) -> Condition:
    return Condition(
        type=READY,
        status=ConditionStatus.FALSE,
        reason="Reverting",
        message=f"being reverted to VMSnapshot {snapshot}: kept stopped until KubeVirt has restored it, "
        "then set to spec.state again",
        observedGeneration=generation,
        lastTransitionTime=now,
    )


def _scheduled(spec: VirtualMachineSpec, vmi: dict | None, generation: int, now: str) -> Condition | None:
    if spec.state is not PowerState.RUNNING or vmi is None:
        return None
    pod_scheduled = condition_of(vmi, "PodScheduled")
    if pod_scheduled is not None and pod_scheduled.get("status") == "False":
        message = pod_scheduled.get("message") or "no host can run the VM"
        if "affinity rules" in message and spec.affinityGroups:
            message += f" (the rules of AffinityGroup {', '.join(spec.affinityGroups)})"
        if spec.gpu is not None and "Insufficient" in message:
            message += f" (GPUProfile {spec.gpu.profile}: no host has {spec.gpu.count} free)"
        return Condition(
            type=SCHEDULED,
            status=ConditionStatus.FALSE,
            reason="InsufficientCapacity",
            message=message,
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    if node := (vmi.get("status") or {}).get("nodeName"):
        return Condition(
            type=SCHEDULED,
            status=ConditionStatus.TRUE,
            reason="Scheduled",
            message=f"placed on {node}",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    return None


def _restart_required(observed: Observed, generation: int, now: str) -> Condition | None:
    """A change the running guest has not got: it applies when the VM next starts."""
    if observed.resize_held:
        return Condition(
            type=RESTART_REQUIRED,
            status=ConditionStatus.TRUE,
            reason="GuestAgentMissing",
            message="dynamic scaling needs the guest agent, which is not connected: the new cpu/memory apply "
            "when the VM next starts (or set spec.rebootRequestedAt)",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    kubevirt = condition_of(observed.kubevirt_vm, RESTART_REQUIRED) or {}
    if kubevirt.get("status") != "True" and observed.groups_pending is not None:
        return Condition(
            type=RESTART_REQUIRED,
            status=ConditionStatus.TRUE,
            reason="AffinityGroupsChanged",
            message=f"the VM {observed.groups_pending} when it next starts, as CloudStack changes the groups of "
            "stopped VMs only (or set spec.rebootRequestedAt)",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    if kubevirt.get("status") != "True":
        return None
    return Condition(
        type=RESTART_REQUIRED,
        status=ConditionStatus.TRUE,
        reason="RestartRequired",
        message="a change cannot be applied to the running VM (without spec.dynamicScaling, cpu and memory "
        "changes wait for a start): it applies when the VM next starts (or set spec.rebootRequestedAt). "
        f"KubeVirt: {kubevirt.get('message', '')}".rstrip(),
        observedGeneration=generation,
        lastTransitionTime=now,
    )


def _affinity_groups(missing: list[str], pending: str | None, generation: int, now: str) -> Condition:
    if not missing and pending is not None:
        return Condition(
            type=AFFINITY_GROUPS,
            status=ConditionStatus.FALSE,
            reason="PendingRestart",
            message=f"the VM {pending} at its next start: the running VM is placed by its groups as they were",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    if not missing:
        return Condition(
            type=AFFINITY_GROUPS,
            status=ConditionStatus.TRUE,
            reason="Applied",
            message="every AffinityGroup the VM lists is applied to its placement",
            observedGeneration=generation,
            lastTransitionTime=now,
        )
    return Condition(
        type=AFFINITY_GROUPS,
        status=ConditionStatus.FALSE,
        reason="GroupMissing",
        message=f"AffinityGroup {', '.join(missing)} does not exist: create it or remove it from "
        "spec.affinityGroups; until then the VM is placed without it",
        observedGeneration=generation,
        lastTransitionTime=now,
    )


def _ssh_keys(delivery: KeysDelivery, kubevirt_message: str, generation: int, now: str) -> Condition:
    messages = {
        KeysDelivery.AT_BOOT: "the guest has the SSH keys of spec.sshKeyPairs (given at boot)",
        KeysDelivery.PENDING_RESTART: "the guest booted with other SSH keys, or another way of receiving them: the "
        "new ones reach it at its next start (set spec.rebootRequestedAt to apply them now)",
        KeysDelivery.LIVE: "the guest agent keeps the SSH keys of spec.sshKeyPairs in the authorized_keys of "
        "spec.sshKeyGuestAgentUsers while the VM runs (KubeVirt reports them in sync; a key change reaches the "
        "guest within the kubelet's Secret sync period)",
        KeysDelivery.WAITING_FOR_AGENT: "the guest agent has not put the SSH keys of spec.sshKeyPairs in: they "
        "go in once the guest runs its QEMU guest agent"
        + (f". KubeVirt: {kubevirt_message}" if kubevirt_message else ""),
    }
    return Condition(
        type=SSH_KEYS,
        status=ConditionStatus.TRUE if delivery in (KeysDelivery.AT_BOOT, KeysDelivery.LIVE) else ConditionStatus.FALSE,
        reason=delivery.value,
        message=messages[delivery],
        observedGeneration=generation,
        lastTransitionTime=now,
    )


def _ip_addresses(vmi: dict | None) -> list[str]:
    if vmi is None:
        return []
    return [i["ipAddress"] for i in vmi["status"].get("interfaces", []) if i.get("ipAddress")]


# States on the way to another, and the Ready reasons that only say so (nothing for the user to act on).
IN_PROGRESS = frozenset({VMState.CREATING, VMState.STARTING, VMState.STOPPING})
_PROGRESS_REASONS = frozenset({*(state.value for state in IN_PROGRESS), "Provisioning"})


def in_progress(status: VirtualMachineStatus) -> bool:
    """The status only says the VM is on its way: worth writing only if it lasts (see the VM controller)."""
    ready = condition_in(status.conditions, READY)
    return status.state in IN_PROGRESS and ready is not None and ready.reason in _PROGRESS_REASONS


HELD_BACK = (CAPACITY_LIMIT, QUOTA_EXCEEDED)


def transition_event(previous: VirtualMachineStatus, current: VirtualMachineStatus) -> tuple[str, str, str] | None:
    """(type, reason, note) of the Event for a state the VM arrived in; None when the state stayed.

    A state on the way (Creating, Starting, Stopping) is in the status but makes no Event: the
    Event comes when the VM arrives, and says where from. A VM held back on its way (the capacity
    limit, its namespace's quota) makes a Warning when it starts to wait.
    """
    ready = condition_in(current.conditions, READY)
    if ready is not None and ready.reason in HELD_BACK:
        was = condition_in(previous.conditions, READY)
        return None if was is not None and was.reason == ready.reason else ("Warning", ready.reason, ready.message)
    if current.state is None or current.state == previous.state or current.state in IN_PROGRESS:
        return None
    kind = "Warning" if current.state in (VMState.DOWN, VMState.ERROR) else "Normal"
    was = previous.state.value if previous.state else "new"
    note = f"{was} -> {current.state.value}" + (f": {ready.message}" if ready is not None else "")
    return kind, current.state.value, note
