"""Reconcile the VMSnapshots of one VM: tie them to the VM, take, fail, revert and drop them, report.

Keyed by VM, not by snapshot: CloudStack's rules (one snapshot at a time, the chain, the current
snapshot, the limit) span a VM's snapshots, and one worker per key keeps their decisions together.
Statuses are written before KubeVirt objects are created or deleted (status/vmsnapshot.py says why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..api.conditions import condition_in
from ..api.settings import Settings
from ..api.virtualmachine import VirtualMachineSpec
from ..api.vmsnapshot import SnapshotPhase, VMSnapshotSpec, VMSnapshotStatus
from ..builders.snapshot import (
    RESTORES,
    SNAPSHOT_API,
    SNAPSHOTS,
    build_kubevirt_snapshot,
    build_restore,
    owned_by_vm,
    snapshot_owner_patch,
)
from ..status.vmsnapshot import Plan, Snapshot, VMView, plan_snapshots, timeout_of
from .base import Controller, Key, one

log = logging.getLogger(__name__)
PLURAL = "vssnapshots"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class SnapshotIndexes:
    """kopf's indexes this controller reads."""

    snapshots: Any  # VMSnapshots by (namespace, VM name)
    kubevirt_snapshots: Any  # VirtualMachineSnapshots by (namespace, name)
    restores: Any  # VirtualMachineRestores by (namespace, VMSnapshot name)
    vms: Any
    kubevirt_vms: Any
    vmis: Any


class VMSnapshotController(Controller):
    name = "vmsnapshot"
    plural = PLURAL

    def __init__(self, kube: Any, settings: Settings) -> None:
        super().__init__(kube)
        self.settings = settings

    def primary_index(self) -> Any:
        return self.indexes.snapshots

    async def reconcile(self, key: Key) -> None:
        assert self.indexes is not None, "enqueue() binds the indexes before any key is queued"
        indexes = self.indexes
        namespace, _ = key
        objects = [self.fresh((namespace, o["metadata"]["name"]), o) for o in indexes.snapshots.get(key) or []]
        if not objects:
            return
        vm = one(indexes.vms, key)
        if vm is not None and vm["metadata"].get("deletionTimestamp"):
            return  # garbage collection takes its snapshots along
        snapshots = [
            Snapshot(
                obj,
                one(indexes.kubevirt_snapshots, (namespace, obj["metadata"]["name"])),
                tuple(indexes.restores.get((namespace, obj["metadata"]["name"])) or ()),
            )
            for obj in objects
        ]
        if vm is not None:
            await self._own(snapshots, vm)
        at = datetime.now(UTC)
        plan = plan_snapshots(
            snapshots,
            VMView(vm, one(indexes.kubevirt_vms, key), one(indexes.vmis, key)),
            VirtualMachineSpec.model_validate(vm["spec"]) if vm is not None else None,
            self.settings.maxSnapshotsPerVM,
            self.settings.snapshotCreateTimeout,
            at,
            at.strftime(TIME_FORMAT),
        )
        await self._carry_out(plan, {s.name: s.obj for s in snapshots}, namespace, vm)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)

    async def _carry_out(self, plan: Plan, by_name: dict[str, dict], namespace: str, vm: dict | None) -> None:
        """Statuses first, then what KubeVirt should take, restore or forget, then the snapshots to drop."""
        for name, status in plan.statuses.items():
            await self._write(by_name[name], status)
        for name in plan.create_snapshots:
            await self._take(by_name[name], vm)
        for name in plan.create_restores:
            obj = by_name[name]
            spec = VMSnapshotSpec.model_validate(obj["spec"])
            restore = build_restore(
                name, namespace, obj["metadata"]["uid"], spec.virtualMachine, spec.revertRequestedAt
            )
            await self.kube.create_custom(restore, RESTORES)
        for name in plan.delete_kubevirt:
            await self.kube.delete_custom(SNAPSHOT_API, SNAPSHOTS, namespace, name)
        for name in plan.delete_restores:
            await self.kube.delete_custom(SNAPSHOT_API, RESTORES, namespace, name)
        for name, reason, note in plan.delete_snapshots:
            if await self.kube.delete_custom(by_name[name]["apiVersion"], PLURAL, namespace, name):
                await self.kube.post_event(vm, "Normal", reason, note)

    async def _own(self, snapshots: list[Snapshot], vm: dict) -> None:
        """The VM's owner reference in each snapshot's metadata: deleting the VM deletes its snapshots."""
        for snapshot in snapshots:
            if not owned_by_vm(snapshot.obj, vm) and not snapshot.obj["metadata"].get("deletionTimestamp"):
                await self.kube.apply(snapshot_owner_patch(snapshot.obj, vm), PLURAL)

    async def _take(self, obj: dict, vm: dict) -> None:
        meta, spec = obj["metadata"], VMSnapshotSpec.model_validate(obj["spec"])
        resources = VirtualMachineSpec.model_validate(vm["spec"]).resources
        timeout = timeout_of(spec, self.settings.snapshotCreateTimeout)
        body = build_kubevirt_snapshot(
            meta["name"], meta["namespace"], meta["uid"], spec.virtualMachine, timeout, resources
        )
        await self.kube.create_custom(body, SNAPSHOTS)

    async def _write(self, obj: dict, status: VMSnapshotStatus) -> None:
        """The status, and an Event when the phase changed (Warning when it failed)."""
        before = (obj.get("status") or {}).get("phase")
        if not await self.write_status(obj, status) or status.phase is None or before == status.phase.value:
            return
        ready = condition_in(status.conditions, "Ready")
        kind = "Warning" if status.phase is SnapshotPhase.FAILED else "Normal"
        note = f"{before or 'new'} -> {status.phase.value}" + (f": {ready.message}" if ready and ready.message else "")
        await self.kube.post_event(obj, kind, status.phase.value, note)
