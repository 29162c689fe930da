"""KubeVirt's snapshot and restore controllers (decisions in ../snapshot.py).

Follows kubevirt/kubevirt pkg/storage/snapshot/snapshot.go, source.go and restore.go.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from virtstack.workqueue import WorkQueue

from ..informer import Key
from ..snapshot import LAST_RESTORE_ANNOTATION, plan_restore, plan_snapshot, restore_uid
from .kube import KUBEVIRT, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator

SNAPSHOT = ("snapshot.kubevirt.io", "v1beta1")
JSON_PATCH = "application/json-patch+json"


class SnapshotController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.kube = sim.kube
        self.snapshots = WorkQueue("snapshot", self.sync_snapshot, workers=4)
        self.restores = WorkQueue("restore", self.sync_restore, workers=4)

    async def run(self) -> None:
        await asyncio.gather(self.snapshots.run(), self.restores.run())

    def vm_changed(self, namespace: str, vm_name: str) -> None:
        for (ns, name), snapshot in list(self.sim.vm_snapshots.cache.items()):
            if ns == namespace and snapshot["spec"]["source"].get("name") == vm_name:
                self.snapshots.add((ns, name))
        for (ns, name), restore in list(self.sim.vm_restores.cache.items()):
            if ns == namespace and restore["spec"]["target"].get("name") == vm_name:
                self.restores.add((ns, name))

    def snapshot_changed(self, namespace: str, snapshot_name: str) -> None:
        self.snapshots.add((namespace, snapshot_name))
        for (ns, name), restore in list(self.sim.vm_restores.cache.items()):
            if ns == namespace and restore["spec"].get("virtualMachineSnapshotName") == snapshot_name:
                self.restores.add((ns, name))

    def _content_of(self, namespace: str, snapshot: dict | None) -> dict | None:
        name = ((snapshot or {}).get("status") or {}).get("virtualMachineSnapshotContentName")
        return self.sim.vm_snapshot_contents.cache.get((namespace, name)) if name else None

    async def sync_snapshot(self, key: Key) -> None:
        snapshot = self.sim.vm_snapshots.cache.get(key)
        if snapshot is None or snapshot["metadata"].get("deletionTimestamp"):
            return
        namespace, name = key
        vm_name = snapshot["spec"]["source"].get("name", "")
        vm = self.sim.vms.cache.get((namespace, vm_name))
        vmi = self.sim.vmis.cache.get((namespace, vm_name))
        plan = plan_snapshot(snapshot, vm, vmi, self._content_of(namespace, snapshot), datetime.now(UTC))
        if plan.create_content is not None:
            await self.kube.create(SNAPSHOT, namespace, "virtualmachinesnapshotcontents", plan.create_content)
        if plan.content_status is not None:
            content_name = snapshot["status"]["virtualMachineSnapshotContentName"]
            body = {"status": plan.content_status}
            await self.kube.patch(
                SNAPSHOT, namespace, "virtualmachinesnapshotcontents", content_name, body, status=True
            )
        if plan.freeze and vmi is not None and (vmi.get("status") or {}).get("fsFreezeStatus") != plan.freeze:
            body = {"metadata": {"resourceVersion": vmi["metadata"]["resourceVersion"]}}
            body["status"] = {"fsFreezeStatus": plan.freeze}
            await self.kube.patch(KUBEVIRT, namespace, "virtualmachineinstances", vm_name, body)
        await self._mark_vm(vm, "snapshotInProgress", plan.vm_in_progress)
        if plan.status is not None:
            await self._write_status(snapshot, "virtualmachinesnapshots", plan.status)
        if plan.requeue_after is not None:
            self.snapshots.add_after(key, plan.requeue_after + 0.1)

    async def sync_restore(self, key: Key) -> None:
        restore = self.sim.vm_restores.cache.get(key)
        if restore is None or restore["metadata"].get("deletionTimestamp"):
            return
        namespace, _ = key
        vm_name = restore["spec"]["target"].get("name", "")
        vm = self.sim.vms.cache.get((namespace, vm_name))
        vmi = self.sim.vmis.cache.get((namespace, vm_name))
        snapshot = self.sim.vm_snapshots.cache.get((namespace, restore["spec"].get("virtualMachineSnapshotName", "")))
        content = self._content_of(namespace, snapshot)
        plan = plan_restore(restore, vm, vmi, snapshot, content, datetime.now(UTC))
        if plan.stop_target and vm is not None:
            stop = {"running": False} if "running" in vm["spec"] else {"runStrategy": "Halted"}
            # Only the VM as seen: a stale cache must not halt a VM the restore has already rewritten.
            body = {"metadata": {"resourceVersion": vm["metadata"]["resourceVersion"]}, "spec": stop}
            await self.kube.patch(KUBEVIRT, namespace, "virtualmachines", vm_name, body)
        if plan.vm_spec is not None and vm is not None:
            mark = restore_uid(restore)
            annotate = (
                {"op": "add", "path": "/metadata/annotations/restore.kubevirt.io~1lastRestoreUID", "value": mark}
                if vm["metadata"].get("annotations")
                else {"op": "add", "path": "/metadata/annotations", "value": {LAST_RESTORE_ANNOTATION: mark}}
            )
            body = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": vm["metadata"]["resourceVersion"]},
                {"op": "replace", "path": "/spec", "value": plan.vm_spec},
                annotate,
            ]
            await self.kube.custom.patch_namespaced_custom_object(
                *KUBEVIRT,
                namespace,
                "virtualmachines",
                vm_name,
                body,
                field_validation="Strict",
                _content_type=JSON_PATCH,
            )
        await self._mark_vm(vm, "restoreInProgress", plan.vm_in_progress)
        if plan.status is not None:
            await self._write_status(restore, "virtualmachinerestores", plan.status)
        if plan.requeue_after is not None:
            self.restores.add_after(key, plan.requeue_after)

    async def _mark_vm(self, vm: dict | None, field: str, value: str | None | bool) -> None:
        """Set or clear the VM's snapshotInProgress / restoreInProgress (False: leave it)."""
        if vm is None or value is False or (vm.get("status") or {}).get(field) == value:
            return
        body = {"metadata": {"resourceVersion": vm["metadata"]["resourceVersion"]}, "status": {field: value}}
        await self.kube.patch(
            KUBEVIRT, vm["metadata"]["namespace"], "virtualmachines", vm["metadata"]["name"], body, status=True
        )

    async def _write_status(self, obj: dict, plural: str, status: dict) -> None:
        body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}}
        body["status"] = merge_patch_for(obj.get("status") or {}, status)
        meta = obj["metadata"]
        await self.kube.patch(SNAPSHOT, meta["namespace"], plural, meta["name"], body, status=True)
