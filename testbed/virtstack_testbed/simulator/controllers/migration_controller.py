"""KubeVirt's migration controller and virt-handler's part of a migration (decisions in ../migration.py).

Follows kubevirt/kubevirt pkg/virt-controller/watch/migration/migration.go and
pkg/virt-handler/migration-target.go. Admission refusals KubeVirt's webhook would make
(migration-create-admitter.go) need other objects, which CEL cannot read: the simulator refuses
instead, ending the VMIM Failed with a `Failure` condition carrying KubeVirt's reason and message.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kubernetes_asyncio.client.exceptions import ApiException
from virtstack.workqueue import WorkQueue

from ..hotplug import workload_update
from ..informer import Key
from ..migration import MigrationPlan, plan_migration
from .kube import KUBEVIRT, STRICT, ignore_not_found, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator

PLURAL = "virtualmachineinstancemigrations"


class MigrationController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.kube = sim.kube
        self.queue = WorkQueue("migration", self.sync)
        self.updates = WorkQueue("workload-updater", self.sync_workload, workers=2)

    async def run(self) -> None:
        await asyncio.gather(self.queue.run(), self.updates.run())

    async def sync_workload(self, key: Key) -> None:
        """workload-updater.go: migrate a running VMI whose CPU or memory change is pending."""
        vmi = self.sim.vmis.cache.get(key)
        if vmi is None:
            return
        migrations = [m for (ns, _), m in self.sim.vmims.cache.items() if ns == key[0]]
        migration = workload_update(vmi, migrations)
        if migration is not None:
            await self.kube.create(KUBEVIRT, key[0], PLURAL, migration)

    def vmi_changed(self, namespace: str, vmi_name: str) -> None:
        self.updates.add((namespace, vmi_name))
        for (ns, name), vmim in list(self.sim.vmims.cache.items()):
            if ns == namespace and vmim["spec"].get("vmiName") == vmi_name:
                self.queue.add((ns, name))

    async def sync(self, key: Key) -> None:
        vmim = self.sim.vmims.cache.get(key)
        if vmim is None or vmim["metadata"].get("deletionTimestamp"):
            return
        namespace, name = key
        vmi = self.sim.vmis.cache.get((namespace, vmim["spec"].get("vmiName", "")))
        pods = self.sim.pods_of(vmi) if vmi is not None else []
        migrations = [m for (ns, _), m in self.sim.vmims.cache.items() if ns == namespace]
        plan = plan_migration(
            vmim, vmi, pods, migrations, datetime.now(UTC), self.sim.options.migration_unschedulable_timeout_seconds
        )
        await self._carry_out(namespace, name, vmim, vmi, plan)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.1)

    async def _carry_out(self, namespace: str, name: str, vmim: dict, vmi: dict | None, plan: MigrationPlan) -> None:
        if plan.create_pod is not None:
            try:
                await self.kube.core.create_namespaced_pod(namespace, plan.create_pod, field_validation=STRICT)
            except ApiException as error:
                if error.status != 409:
                    raise
        for pod in plan.delete_pods:
            await ignore_not_found(self.kube.core.delete_namespaced_pod(pod, namespace))
        if vmi is not None and (plan.vmi_status or plan.vmi_labels):
            body: dict = {"metadata": {"resourceVersion": vmi["metadata"]["resourceVersion"]}}
            if plan.vmi_labels:
                body["metadata"]["labels"] = plan.vmi_labels
            if plan.vmi_status:
                body["status"] = plan.vmi_status
            await self.kube.patch(KUBEVIRT, namespace, "virtualmachineinstances", vmi["metadata"]["name"], body)
        if plan.vmim_labels:
            await self.kube.patch(KUBEVIRT, namespace, PLURAL, name, {"metadata": {"labels": plan.vmim_labels}})
        if plan.vmim_status is not None:
            old = vmim.get("status") or {}
            body = {"metadata": {"resourceVersion": vmim["metadata"]["resourceVersion"]}}
            body["status"] = merge_patch_for(old, plan.vmim_status)
            await self.kube.patch(KUBEVIRT, namespace, PLURAL, name, body, status=True)
