"""KubeVirt's VirtualMachine controller (decisions in ../vm.py).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vm/vm.go: finalizer, the runStrategy table,
the VMI created from the template, the finalizer dance on deletion, and the status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtstack.workqueue import WorkQueue

from ..informer import Key
from ..vm import FINAL_PHASES, VM_FINALIZER, Action, vm_status, vmi_action, vmi_from_vm
from .kube import KUBEVIRT, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator


class VmController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.kube = sim.kube
        self.queue = WorkQueue("vm", self.sync)

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
        deleting = bool(vm["metadata"].get("deletionTimestamp"))
        finalizers = vm["metadata"].get("finalizers") or []
        if not deleting and VM_FINALIZER not in finalizers:
            await self._patch_metadata(namespace, name, {"finalizers": [*finalizers, VM_FINALIZER]})
            return
        action = vmi_action(vm, vmi)
        if action is Action.CREATE_VMI:
            await self.kube.create(KUBEVIRT, namespace, "virtualmachineinstances", vmi_from_vm(vm))
        elif action is Action.DELETE_VMI:
            await self.kube.delete(KUBEVIRT, namespace, "virtualmachineinstances", name)
        if (
            vmi is not None
            and vmi["metadata"].get("deletionTimestamp")
            and VM_FINALIZER in (vmi["metadata"].get("finalizers") or [])
            and vmi.get("status", {}).get("phase") in FINAL_PHASES
        ):
            remaining = [f for f in vmi["metadata"]["finalizers"] if f != VM_FINALIZER]
            await self.kube.patch(
                KUBEVIRT, namespace, "virtualmachineinstances", name, {"metadata": {"finalizers": remaining}}
            )
        if deleting:
            if vmi is None and VM_FINALIZER in finalizers:
                await self._patch_metadata(
                    namespace, name, {"finalizers": [f for f in finalizers if f != VM_FINALIZER]}
                )
            return
        old = vm.get("status") or {}
        status = vm_status(vm, vmi)
        if status != old:
            patch = {"status": merge_patch_for(old, status)}
            await self.kube.patch(KUBEVIRT, namespace, "virtualmachines", name, patch, status=True)

    async def _patch_metadata(self, namespace: str, name: str, metadata: dict) -> None:
        await self.kube.patch(KUBEVIRT, namespace, "virtualmachines", name, {"metadata": metadata})


def _owned_by(vmi: dict, vm: dict) -> bool:
    return any(ref.get("uid") == vm["metadata"]["uid"] for ref in vmi["metadata"].get("ownerReferences", []))
