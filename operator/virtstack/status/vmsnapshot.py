"""The snapshots of one VM, decided together (pure): what to create, fail, revert, delete, and each status.

A VM's snapshots are one unit because CloudStack's rules span them: one snapshot in progress at a
time, a chain of parents, one current snapshot, at most `maxSnapshotsPerVM`. Everything is derived
from the objects as they are (VMSnapshots, their KubeVirt snapshots and restores, the VM), so a
crash at any point is repaired by the next run, and a run that finds nothing to change writes nothing.

- The chain: a snapshot records its `ancestors` (parent first) when it starts; its parent is the
  first of them that still exists, so deleting a snapshot re-links its children to its parent.
- Current: the ready snapshot most recently taken or reverted to.
- Two steps for what must not be repeated: a snapshot is taken only once its stored status says
  Creating (with its chain), and its KubeVirt snapshot is deleted only once its stored status says
  Failed; an index that lags behind the operator's own writes then never makes it take a failed
  snapshot again.
- A revert is pending while `spec.revertRequestedAt` differs from `status.lastRevertedAt` and its
  restore (named after the request) has not failed; the VM is held halted meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..api.conditions import Condition, ConditionStatus, condition_in, merge_conditions
from ..api.durations import parse_duration
from ..api.virtualmachine import VirtualMachineSpec
from ..api.vmsnapshot import SnapshotPhase, VMSnapshotSpec, VMSnapshotStatus
from ..builders.kubevirt_vm import ATTACHED_ISO_ANNOTATION
from ..builders.snapshot import RESOURCES_ANNOTATION, resources_stamp, restore_name

READY = "Ready"
MEMORY_STATE = "MemoryState"
QUIESCED = "Quiesced"
LAST_RESTORE_ANNOTATION = "restore.kubevirt.io/lastRestoreUID"  # KubeVirt marks the VM a restore rewrote
# KubeVirt fails a snapshot at its failureDeadline; the operator fails it itself this much later if
# KubeVirt has not (its snapshot controller down, say), so the timeout holds either way.
DEADLINE_GRACE = timedelta(seconds=30)
MEMORY_MESSAGE = (
    "KubeVirt cannot keep a VM's CPU and memory state (it has no memory snapshots): this snapshot keeps "
    "the disks only, and a revert boots the VM from them"
)


@dataclass(frozen=True)
class Snapshot:
    """One VMSnapshot and what KubeVirt has for it."""

    obj: dict
    kubevirt: dict | None = None  # its VirtualMachineSnapshot
    restores: tuple[dict, ...] = ()  # its VirtualMachineRestores

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def spec(self) -> VMSnapshotSpec:
        return VMSnapshotSpec.model_validate(self.obj["spec"])

    @property
    def stored(self) -> VMSnapshotStatus:
        return VMSnapshotStatus.model_validate(self.obj.get("status") or {})

    @property
    def created(self) -> str:
        return self.obj["metadata"].get("creationTimestamp", "")


@dataclass(frozen=True)
class VMView:
    """The virtstack VM, and its KubeVirt VM and VMI, as observed."""

    vm: dict | None
    kubevirt_vm: dict | None = None
    vmi: dict | None = None


@dataclass
class Plan:
    statuses: dict[str, VMSnapshotStatus] = field(default_factory=dict)
    create_snapshots: list[str] = field(default_factory=list)  # VMSnapshots whose KubeVirt snapshot to create
    delete_kubevirt: list[str] = field(default_factory=list)  # KubeVirt snapshots of failed VMSnapshots
    create_restores: list[str] = field(default_factory=list)  # VMSnapshots whose pending revert to start
    delete_restores: list[str] = field(default_factory=list)  # restores of earlier requests
    delete_snapshots: list[tuple[str, str, str]] = field(default_factory=list)  # (name, Event reason, note)
    requeue_after: float | None = None

    def wake_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.5)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def timeout_of(spec: VMSnapshotSpec, default: str) -> str:
    return spec.timeout or default


def _condition(kind: str, status: ConditionStatus, reason: str, message: str, generation: int, now: str) -> Condition:
    return Condition(
        type=kind, status=status, reason=reason, message=message, observedGeneration=generation, lastTransitionTime=now
    )


def migrating(view: VMView) -> bool:
    """KubeVirt is moving the VM to another host (CloudStack takes no snapshot meanwhile)."""
    printable = ((view.kubevirt_vm or {}).get("status") or {}).get("printableStatus")
    reported = ((view.vm or {}).get("status") or {}).get("state")
    state = ((view.vmi or {}).get("status") or {}).get("migrationState") or {}
    moving = bool(state and not state.get("completed") and not state.get("failed"))
    return printable == "Migrating" or reported == "Migrating" or moving


def _kubevirt_phase(snapshot: Snapshot) -> str | None:
    return ((snapshot.kubevirt or {}).get("status") or {}).get("phase")


def _in_progress(snapshot: Snapshot) -> bool:
    """KubeVirt is taking it: created, not yet Succeeded or Failed, and not given up by us."""
    return (
        snapshot.kubevirt is not None
        and _kubevirt_phase(snapshot) not in ("Succeeded", "Failed")
        and snapshot.stored.phase is not SnapshotPhase.FAILED
    )


def _ready_to_use(snapshot: Snapshot) -> bool:
    return bool(((snapshot.kubevirt or {}).get("status") or {}).get("readyToUse"))


def _restore(snapshot: Snapshot, requested: datetime) -> dict | None:
    wanted = restore_name(snapshot.name, requested)
    return next((r for r in snapshot.restores if r["metadata"]["name"] == wanted), None)


def _restore_failure(restore: dict | None) -> str | None:
    for condition in ((restore or {}).get("status") or {}).get("conditions", []):
        if condition.get("type") == "Failure" and condition.get("status") == "True":
            return condition.get("message") or condition.get("reason") or "the restore failed"
    return None


def _stale_request(snapshot: Snapshot) -> bool:
    """A revert request older than the snapshot itself (a manifest re-applied from Git after the
    snapshot was re-created, say) cannot be meant for it: it is ignored, and said so."""
    requested, created = snapshot.spec.revertRequestedAt, parse_time(snapshot.created)
    return requested is not None and created is not None and requested < created


def revert_pending(snapshot: Snapshot) -> bool:
    """A revert was asked for, is not carried out, and has not failed."""
    spec, stored = snapshot.spec, snapshot.stored
    if spec.revertRequestedAt is None or stored.lastRevertedAt == spec.revertRequestedAt or _stale_request(snapshot):
        return False
    restore = _restore(snapshot, spec.revertRequestedAt)
    return not ((restore or {}).get("status") or {}).get("complete") and _restore_failure(restore) is None


def holds_vm(snapshot: dict, kubevirt_vm: dict | None) -> bool:
    """Whether this VMSnapshot (as stored) keeps its VM halted: a revert runs and KubeVirt has not yet
    rewritten the VM from the snapshot (it marks the VM with the restore it carried out)."""
    status = snapshot.get("status") or {}
    requested = parse_time((snapshot.get("spec") or {}).get("revertRequestedAt"))
    if status.get("phase") != SnapshotPhase.REVERTING or requested is None:
        return False
    done = ((kubevirt_vm or {}).get("metadata", {}).get("annotations") or {}).get(LAST_RESTORE_ANNOTATION, "")
    return not done.startswith(restore_name(snapshot["metadata"]["name"], requested) + "-")


@dataclass
class _Decided:
    """What the first pass decided per snapshot, by name."""

    busy: str | None  # the snapshot KubeVirt is taking, if any
    reverting: str | None  # the snapshot whose revert runs or starts, if any
    phases: dict[str, SnapshotPhase] = field(default_factory=dict)
    not_ready: dict[str, tuple[str, str]] = field(default_factory=dict)  # (Ready reason, message)
    reverted: dict[str, datetime | None] = field(default_factory=dict)  # lastRevertedAt

    def set(self, name: str, phase: SnapshotPhase, reason: str | None = None, message: str = "") -> None:
        self.phases[name] = phase
        if reason is not None:
            self.not_ready[name] = (reason, message)


def plan_snapshots(
    snapshots: list[Snapshot],
    view: VMView,
    vm_spec: VirtualMachineSpec | None,
    max_snapshots: int,
    default_timeout: str,
    at: datetime,
    now: str,
) -> Plan:
    """Decide everything for one VM's snapshots (`at` and `now`: the same moment, as a time and as text)."""
    plan = Plan()
    live = sorted(
        (s for s in snapshots if not s.obj["metadata"].get("deletionTimestamp")), key=lambda s: (s.created, s.name)
    )
    decided = _Decided(
        busy=next((s.name for s in live if _in_progress(s)), None),
        reverting=next((s.name for s in live if revert_pending(s) and _ready_to_use(s)), None),
    )
    for snapshot in live:
        _decide(snapshot, decided, view, default_timeout, at, plan)
    phases = decided.phases

    _drop_memory_snapshots(live, phases, view, vm_spec, plan)
    dropped = {name for name, _, _ in plan.delete_snapshots}
    current = _current([s for s in live if s.name not in dropped], phases, decided.reverted)
    _drop_beyond_limit(live, phases, view, max_snapshots, current, dropped, plan)
    dropped = {name for name, _, _ in plan.delete_snapshots}
    remaining = {s.name: s for s in live if s.name not in dropped}
    starting = {name for name, phase in phases.items() if phase is SnapshotPhase.CREATING}
    ancestors = _ancestors(live, remaining, phases, current, starting)
    for snapshot in live:
        name = snapshot.name
        if name not in dropped:
            plan.statuses[name] = _status(
                snapshot,
                phases[name],
                decided.not_ready.get(name),
                ancestors[name],
                name == current,
                decided.reverted[name],
                now,
            )
    return plan


def _decide(
    snapshot: Snapshot, decided: _Decided, view: VMView, default_timeout: str, at: datetime, plan: Plan
) -> None:
    """The snapshot's phase, from what KubeVirt reports, and what to create or delete for it."""
    name, stored = snapshot.name, snapshot.stored
    decided.reverted[name] = stored.lastRevertedAt
    if stored.phase is SnapshotPhase.FAILED:
        decided.set(name, SnapshotPhase.FAILED, *_failed_message(snapshot))
        if snapshot.kubevirt is not None:
            plan.delete_kubevirt.append(name)
        return
    if snapshot.kubevirt is None:
        wait = _why_wait(snapshot, view, decided.busy, decided.reverting)
        if wait is not None:
            decided.set(name, SnapshotPhase.PENDING, *wait)
            return
        decided.busy = name
        decided.set(name, SnapshotPhase.CREATING, "Creating", "KubeVirt is taking the snapshot")
        if stored.phase is SnapshotPhase.CREATING:
            plan.create_snapshots.append(name)  # once the status (chain included) says so: see the module doc
        return
    timeout = timeout_of(snapshot.spec, default_timeout)
    seconds = parse_duration(timeout)
    if _kubevirt_phase(snapshot) == "Failed" or _past_deadline(snapshot, seconds, at):
        decided.set(name, SnapshotPhase.FAILED, *_failure(snapshot, timeout))
        return
    if not _ready_to_use(snapshot):
        decided.set(name, SnapshotPhase.CREATING, "Creating", "KubeVirt is taking the snapshot")
        created = parse_time(snapshot.kubevirt["metadata"].get("creationTimestamp")) or at
        plan.wake_in((created + timedelta(seconds=seconds) + DEADLINE_GRACE - at).total_seconds())
        return
    decided.set(name, SnapshotPhase.READY)
    _plan_revert(snapshot, decided, plan)


def _why_wait(snapshot: Snapshot, view: VMView, busy: str | None, reverting: str | None) -> tuple[str, str] | None:
    """Why the snapshot cannot start now (a Ready reason and message), or None."""
    vm_name = snapshot.spec.virtualMachine
    if view.vm is None:
        return "VirtualMachineNotFound", f"VirtualMachine {vm_name} (spec.virtualMachine) does not exist: create it"
    if view.kubevirt_vm is None:
        return "VirtualMachineNotCreated", f"VirtualMachine {vm_name} is not created yet: see its Ready condition"
    if migrating(view):
        return "VirtualMachineMigrating", f"VirtualMachine {vm_name} is migrating: the snapshot starts when it ends"
    if busy is not None:
        return (
            "WaitingForSnapshot",
            f"VMSnapshot {busy} of VirtualMachine {vm_name} is in progress: one snapshot at a time per VM, "
            "this one starts after it",
        )
    if reverting is not None:
        return (
            "WaitingForRevert",
            f"VirtualMachine {vm_name} is being reverted to VMSnapshot {reverting}: this one starts after it",
        )
    return None


def _past_deadline(snapshot: Snapshot, timeout: float, at: datetime) -> bool:
    created = parse_time(snapshot.kubevirt["metadata"].get("creationTimestamp"))
    return created is not None and at >= created + timedelta(seconds=timeout) + DEADLINE_GRACE


def _failure(snapshot: Snapshot, timeout: str) -> tuple[str, str]:
    error = (((snapshot.kubevirt or {}).get("status") or {}).get("error") or {}).get("message")
    late = f"not ready within {timeout} (spec.timeout, else the snapshotCreateTimeout setting)"
    if error and "deadline" in error:
        return "Timeout", f"{late}; KubeVirt: {error}"
    if error:
        return "Failed", f"KubeVirt: {error}"
    return "Timeout", late


def _failed_message(snapshot: Snapshot) -> tuple[str, str]:
    previous = condition_in(snapshot.stored.conditions, READY)
    if previous is not None:
        return previous.reason, previous.message
    return "Failed", "the snapshot failed"


def _plan_revert(snapshot: Snapshot, decided: _Decided, plan: Plan) -> None:
    """A ready snapshot's revert: done, failed, waiting for another operation, or running now."""
    name, spec = snapshot.name, snapshot.spec
    requested = spec.revertRequestedAt
    wanted = restore_name(name, requested) if requested is not None else None
    plan.delete_restores += [r["metadata"]["name"] for r in snapshot.restores if r["metadata"]["name"] != wanted]
    if requested is None or snapshot.stored.lastRevertedAt == requested or _stale_request(snapshot):
        return
    restore = _restore(snapshot, requested)
    if ((restore or {}).get("status") or {}).get("complete"):
        decided.reverted[name] = requested
        return
    if (failure := _restore_failure(restore)) is not None:
        message = f"the revert requested at {requested.isoformat()} failed: {failure}"
        decided.set(name, SnapshotPhase.READY, "RevertFailed", message)
        return
    if decided.reverting != name:
        message = f"VMSnapshot {decided.reverting} is reverted to first"
        decided.set(name, SnapshotPhase.READY, "WaitingForRevert", message)
        return
    if decided.busy is not None:
        message = f"VMSnapshot {decided.busy} is in progress: the revert starts after it"
        decided.set(name, SnapshotPhase.READY, "WaitingForSnapshot", message)
        return
    message = (
        f"VirtualMachine {spec.virtualMachine} is stopped if running, restored from this snapshot, "
        "then set to its spec.state again"
    )
    decided.set(name, SnapshotPhase.REVERTING, "Reverting", message)
    if restore is None:
        plan.create_restores.append(name)


def _reverted_or_taken(snapshot: Snapshot, when: datetime | None) -> tuple[datetime, str, str]:
    taken = parse_time(((snapshot.kubevirt or {}).get("status") or {}).get("creationTime"))
    moments = [t for t in (taken, when) if t is not None]
    return (max(moments) if moments else datetime.min.replace(tzinfo=UTC)), snapshot.created, snapshot.name


def _current(
    live: list[Snapshot], phases: dict[str, SnapshotPhase], reverted: dict[str, datetime | None]
) -> str | None:
    """The ready snapshot most recently taken or reverted to."""
    usable = [s for s in live if phases[s.name] in (SnapshotPhase.READY, SnapshotPhase.REVERTING)]
    if not usable:
        return None
    return max(usable, key=lambda s: _reverted_or_taken(s, reverted[s.name])).name


def _ancestors(
    live: list[Snapshot],
    by_name: dict[str, Snapshot],
    phases: dict[str, SnapshotPhase],
    current: str | None,
    starting: set[str],
) -> dict[str, list[str]]:
    """Each snapshot's chain, pruned to snapshots that remain and are older. A snapshot being taken hangs
    under the current snapshot unless an earlier run recorded its chain (a revert cannot run meanwhile,
    so the current snapshot is the same as when it started)."""
    chains: dict[str, list[str]] = {}
    for snapshot in live:
        stored = snapshot.stored.ancestors
        if snapshot.name in starting and not stored and current is not None:
            stored = [current, *by_name[current].stored.ancestors]
        chains[snapshot.name] = [
            a
            for a in stored
            if a in by_name and by_name[a].created <= snapshot.created and phases[a] is not SnapshotPhase.FAILED
        ]
    return chains


def _drop_memory_snapshots(
    live: list[Snapshot],
    phases: dict[str, SnapshotPhase],
    view: VMView,
    vm_spec: VirtualMachineSpec | None,
    plan: Plan,
) -> None:
    """CloudStack drops memory snapshots once the VM's cpu or memory changed (they could not resume it)."""
    if vm_spec is None:
        return
    vm_name = view.vm["metadata"]["name"]
    now_size = resources_stamp(vm_spec.resources)
    for snapshot in live:
        if phases[snapshot.name] is not SnapshotPhase.READY or not snapshot.spec.memory:
            continue
        taken_at = (snapshot.kubevirt["metadata"].get("annotations") or {}).get(RESOURCES_ANNOTATION)
        if taken_at and taken_at != now_size:
            plan.delete_snapshots.append(
                (
                    snapshot.name,
                    "MemorySnapshotDropped",
                    f"VMSnapshot {snapshot.name} deleted: it was taken with memory: true at {taken_at}, "
                    f"and VirtualMachine {vm_name} now has {now_size}",
                )
            )


def _drop_beyond_limit(
    live: list[Snapshot],
    phases: dict[str, SnapshotPhase],
    view: VMView,
    max_snapshots: int,
    current: str | None,
    dropped: set[str],
    plan: Plan,
) -> None:
    """CloudStack's vmsnapshots.max: beyond it the oldest go (never the current one). Counted once a new
    snapshot is ready, so a snapshot that fails never costs an older one."""
    vm_name = ((view.vm or {}).get("metadata") or {}).get("name", "")
    usable = [
        s for s in live if phases[s.name] in (SnapshotPhase.READY, SnapshotPhase.REVERTING) and s.name not in dropped
    ]
    excess = len(usable) - max_snapshots
    for snapshot in sorted(usable, key=lambda s: (_taken(s), s.created, s.name)):
        if excess <= 0:
            break
        if snapshot.name == current or phases[snapshot.name] is SnapshotPhase.REVERTING:
            continue
        excess -= 1
        plan.delete_snapshots.append(
            (
                snapshot.name,
                "SnapshotLimitReached",
                f"VMSnapshot {snapshot.name} deleted, the oldest: VirtualMachine {vm_name} keeps at most "
                f"{max_snapshots} snapshots (maxSnapshotsPerVM)",
            )
        )


def _taken(snapshot: Snapshot) -> str:
    return ((snapshot.kubevirt or {}).get("status") or {}).get("creationTime") or ""


def _status(
    snapshot: Snapshot,
    phase: SnapshotPhase,
    not_ready: tuple[str, str] | None,
    chain: list[str],
    current: bool,
    last_reverted: datetime | None,
    now: str,
) -> VMSnapshotStatus:
    spec, stored = snapshot.spec, snapshot.stored
    generation = snapshot.obj["metadata"].get("generation", 1)
    kubevirt_status = (snapshot.kubevirt or {}).get("status") or {}
    ready_to_use = phase in (SnapshotPhase.READY, SnapshotPhase.REVERTING) and _ready_to_use(snapshot)
    if phase is SnapshotPhase.READY and not_ready is None:
        ready = _condition(
            READY, ConditionStatus.TRUE, "Ready", _ready_message(snapshot, last_reverted), generation, now
        )
    else:
        reason, message = not_ready or (phase.value, "")
        ready = _condition(READY, ConditionStatus.FALSE, reason, message, generation, now)
    conditions = [ready]
    if spec.memory:
        conditions.append(
            _condition(MEMORY_STATE, ConditionStatus.FALSE, "NotSupported", MEMORY_MESSAGE, generation, now)
        )
    if spec.quiesce and (quiesced := _quiesced(kubevirt_status, generation, now)) is not None:
        conditions.append(quiesced)
    elif spec.quiesce:
        conditions += [c for c in stored.conditions if c.type == QUIESCED]  # a failed snapshot keeps what it knew
    taken = parse_time(kubevirt_status.get("creationTime")) if snapshot.kubevirt is not None else stored.creationTime
    return VMSnapshotStatus(
        phase=phase,
        readyToUse=ready_to_use if phase is not SnapshotPhase.PENDING else False,
        parent=chain[0] if chain else None,
        ancestors=chain,
        current=current,
        creationTime=taken if phase is not SnapshotPhase.FAILED else None,
        lastRevertedAt=last_reverted,
        observedGeneration=generation,
        conditions=merge_conditions(stored.conditions, conditions),
    )


def _ready_message(snapshot: Snapshot, last_reverted: datetime | None) -> str:
    spec = snapshot.spec
    if spec.revertRequestedAt is not None and last_reverted == spec.revertRequestedAt:
        return f"VirtualMachine {spec.virtualMachine} was reverted to this snapshot"
    if _stale_request(snapshot):
        return (
            "spec.revertRequestedAt is older than the snapshot, so it is ignored: set it to the current time "
            "to revert the VM to this snapshot"
        )
    return "the snapshot is taken: the VM can be reverted to it (spec.revertRequestedAt)"


def _quiesced(kubevirt_status: dict, generation: int, now: str) -> Condition | None:
    """From KubeVirt's own indications; none until KubeVirt has said how it takes the snapshot."""
    found = {i.get("indication"): i.get("message", "") for i in kubevirt_status.get("sourceIndications") or []}
    for name in kubevirt_status.get("indications") or []:
        found.setdefault(name, "")
    if not found:
        if kubevirt_status.get("phase") == "Succeeded":
            return _condition(
                QUIESCED,
                ConditionStatus.TRUE,
                "Offline",
                "the VM was not running: its disks were at rest, nothing needed freezing",
                generation,
                now,
            )
        return None
    for indication, reason, fix in (
        ("QuiesceTimeout", "QuiesceTimeout", "the guest agent did not freeze the file systems in time"),
        ("NoGuestAgent", "NoGuestAgent", "install and run the QEMU guest agent in the VM for quiesced snapshots"),
        ("Paused", "Paused", "the VM was paused, so KubeVirt took it without freezing"),
    ):
        if indication in found:
            said = found[indication] or indication
            message = f"not quiesced, the snapshot is crash-consistent: KubeVirt: {said}; {fix}"
            return _condition(QUIESCED, ConditionStatus.FALSE, reason, message, generation, now)
    if "GuestAgent" in found:
        said = found["GuestAgent"] or "GuestAgent"
        return _condition(QUIESCED, ConditionStatus.TRUE, "GuestAgent", f"KubeVirt: {said}", generation, now)
    return None


@dataclass(frozen=True)
class VMSnapshots:
    """What a VM's snapshots mean for the VM itself (read by the VM controller, which writes VM status)."""

    count: int  # not failed, not being deleted
    current: str | None
    reverting_to: str | None  # a revert runs: the VM is kept halted until KubeVirt has restored it


def summarize(snapshots: list[dict], kubevirt_vm: dict | None) -> VMSnapshots:
    live = [s for s in snapshots if not s["metadata"].get("deletionTimestamp")]
    kept = [s for s in live if (s.get("status") or {}).get("phase") != SnapshotPhase.FAILED]
    current = next((s["metadata"]["name"] for s in kept if (s.get("status") or {}).get("current")), None)
    reverting = next((s["metadata"]["name"] for s in live if holds_vm(s, kubevirt_vm)), None)
    return VMSnapshots(len(kept), current, reverting)


def disk_change_refusal(spec: VirtualMachineSpec, kubevirt_vm: dict | None, count: int) -> str | None:
    """CloudStack attaches or removes no disk while VM snapshots exist (a revert could not put the old
    disks back): an ISO attach or detach (spec.attachedISO against what the KubeVirt VM was built
    with) is not carried out, and the VM says why."""
    if not count or kubevirt_vm is None:
        return None
    built_with = (kubevirt_vm["metadata"].get("annotations") or {}).get(ATTACHED_ISO_ANNOTATION)
    if spec.attachedISO == built_with:
        return None
    change = f"attach ISO {spec.attachedISO}" if spec.attachedISO else f"detach ISO {built_with}"
    undo = f"set spec.attachedISO back to {built_with}" if built_with else "remove spec.attachedISO"
    return (
        f"spec.attachedISO: cannot {change} while the VM has {count} VMSnapshot(s) (CloudStack attaches or "
        f"removes no disk while VM snapshots exist): delete the snapshots, or {undo}"
    )
