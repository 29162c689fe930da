"""KubeVirt's VirtualMachine controller (decisions in ../vm.py).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vm/vm.go: finalizer, template DataVolumes,
the runStrategy table with stateChangeRequests and start-failure back-off, the ControllerRevision a
VMI starts from (`revision-start-vm-<uid>-<generation>`, for RestartRequired), live updates of the
running VMI, the finalizer dance on deletion, and the status.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kubernetes_asyncio.client.exceptions import ApiException
from virtstack.workqueue import WorkQueue

from ..informer import Key
from ..vm import (
    FINAL_PHASES,
    VM_FINALIZER,
    Action,
    VmPlan,
    controller_revision,
    plan_vm,
    vm_data_volume_names,
    vmi_from_vm,
)
from .kube import CDI, KUBEVIRT, STRICT, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator


class VmController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.kube = sim.kube
        self.queue = WorkQueue("vm", self.sync)
        self._revisions: dict[tuple[str, str], dict | None] = {}  # immutable: cached once read

    async def run(self) -> None:
        await self.queue.run()

    async def sync(self, key: Key) -> None:
        vm = self.sim.vms.cache.get(key)
        if vm is None:
            return
        namespace, name = key
        vmi = self.sim.vmis.cache.get(key)
        if vmi is not None and not _owned_by(vmi, vm):
            vmi = None  # a VMI of another VM generation is left to garbage collection
        finalizers = vm["metadata"].get("finalizers") or []
        if vm["metadata"].get("deletionTimestamp"):
            await self._delete_vm(vm, vmi)
            return
        if VM_FINALIZER not in finalizers:
            await self._patch_metadata(namespace, name, {"finalizers": [*finalizers, VM_FINALIZER]})
            return
        dvs = {n: dv for n in vm_data_volume_names(vm) if (dv := self.sim.dvs.cache.get((namespace, n))) is not None}
        started = await self._started_spec(vmi)
        plan = plan_vm(
            vm, vmi, dvs, started, datetime.now(UTC), jitter=random.random(), scale=self.sim.options.backoff_scale
        )
        await self._carry_out(vm, vmi, plan)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after + 0.1)

    async def _carry_out(self, vm: dict, vmi: dict | None, plan: VmPlan) -> None:
        namespace, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        for dv in plan.create_dvs:
            await self.kube.create(CDI, namespace, "datavolumes", dv)
        if plan.action is Action.CREATE_VMI:
            await self._create_revision(vm)
            await self.kube.create(KUBEVIRT, namespace, "virtualmachineinstances", vmi_from_vm(vm))
        elif plan.action is Action.DELETE_VMI:
            await self.kube.delete(KUBEVIRT, namespace, "virtualmachineinstances", name, uid=plan.delete_uid)
        await self._release_vmi(vmi)
        if plan.vmi_spec_patch:
            await self.kube.patch(KUBEVIRT, namespace, "virtualmachineinstances", name, {"spec": plan.vmi_spec_patch})
        old = vm.get("status") or {}
        if plan.status != old:
            body = {"metadata": {"resourceVersion": vm["metadata"]["resourceVersion"]}}
            body["status"] = merge_patch_for(old, plan.status)
            await self.kube.patch(KUBEVIRT, namespace, "virtualmachines", name, body, status=True)

    async def _delete_vm(self, vm: dict, vmi: dict | None) -> None:
        """vm.go: delete the VMI, and drop the VM's finalizer once it is gone."""
        namespace, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        if vmi is not None and not vmi["metadata"].get("deletionTimestamp"):
            await self.kube.delete(KUBEVIRT, namespace, "virtualmachineinstances", name)
        await self._release_vmi(vmi)
        finalizers = vm["metadata"].get("finalizers") or []
        if vmi is None and VM_FINALIZER in finalizers:
            await self._patch_metadata(namespace, name, {"finalizers": [f for f in finalizers if f != VM_FINALIZER]})

    async def _release_vmi(self, vmi: dict | None) -> None:
        """A deleted VMI keeps the VM controller's finalizer until it is final (its pod is gone)."""
        if (
            vmi is not None
            and vmi["metadata"].get("deletionTimestamp")
            and VM_FINALIZER in (vmi["metadata"].get("finalizers") or [])
            and (vmi.get("status") or {}).get("phase") in FINAL_PHASES
        ):
            remaining = [f for f in vmi["metadata"]["finalizers"] if f != VM_FINALIZER]
            body = {"metadata": {"finalizers": remaining}}
            await self.kube.patch(
                KUBEVIRT, vmi["metadata"]["namespace"], "virtualmachineinstances", vmi["metadata"]["name"], body
            )

    async def _create_revision(self, vm: dict) -> None:
        revision = controller_revision(vm)
        try:
            await self.kube.apps.create_namespaced_controller_revision(
                vm["metadata"]["namespace"], revision, field_validation=STRICT
            )
        except ApiException as error:
            if error.status != 409:
                raise
        self._revisions[(vm["metadata"]["namespace"], revision["metadata"]["name"])] = revision["data"]["spec"]

    async def _started_spec(self, vmi: dict | None) -> dict | None:
        """The VM spec the VMI was started from, from its ControllerRevision."""
        name = ((vmi or {}).get("status") or {}).get("virtualMachineRevisionName")
        if not name:
            return None
        key = (vmi["metadata"]["namespace"], name)
        if key not in self._revisions:
            try:
                revision = await self.kube.apps.read_namespaced_controller_revision(name, key[0])
                self._revisions[key] = (revision.data or {}).get("spec")  # `object`: a plain dict
            except ApiException as error:
                if error.status != 404:
                    raise
                self._revisions[key] = None
        return self._revisions[key]

    async def _patch_metadata(self, namespace: str, name: str, metadata: dict) -> None:
        await self.kube.patch(KUBEVIRT, namespace, "virtualmachines", name, {"metadata": metadata})


def _owned_by(vmi: dict, vm: dict) -> bool:
    return any(ref.get("uid") == vm["metadata"]["uid"] for ref in vmi["metadata"].get("ownerReferences", []))
