"""The simulator's controllers: informers feed work queues; each sync reads caches, plans, writes.

Every write sends fieldValidation=Strict, as every client of the project does.
"""

from __future__ import annotations

import asyncio
import logging

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from virtstack.workqueue import WorkQueue

from .clock import now
from .informer import Informer, Key, Resource, object_key
from .launcher import LABEL_APP, LABEL_CREATED_BY, LABEL_SCHEDULABLE, launcher_pod
from .vm import VM_FINALIZER, Action, vm_status, vmi_action, vmi_from_vm
from .vmi import plan_vmi

log = logging.getLogger(__name__)

STRICT = "Strict"
MERGE_PATCH = "application/merge-patch+json"
KUBEVIRT = ("kubevirt.io", "v1")
VMS = Resource("kubevirt.io", "v1", "virtualmachines")
VMIS = Resource("kubevirt.io", "v1", "virtualmachineinstances")
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes")
HEARTBEAT_ANNOTATION = "kubevirt.io/heartbeat"
# virt-handler's device plugins advertise these on every host it runs on (--max-devices, default 1000).
DEVICE_PLUGIN_RESOURCES = {f"devices.kubevirt.io/{name}": "1k" for name in ("kvm", "tun", "vhost-net")}


class Simulator:
    def __init__(self, api: client.ApiClient, heartbeat_seconds: float) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.heartbeat_seconds = heartbeat_seconds
        self.vm_queue = WorkQueue("vm", self.sync_vm)
        self.vmi_queue = WorkQueue("vmi", self.sync_vmi)
        self.vms = Informer(api, VMS, self._vm_changed)
        self.vmis = Informer(api, VMIS, self._vmi_changed)
        self.pods = Informer(api, PODS, self._pod_changed, label_selector=f"{LABEL_APP}=virt-launcher")
        self.nodes = Informer(api, NODES, lambda old, new: None)
        # Pods created but not yet seen by the informer, by VMI uid: no double create from a stale cache.
        self._expected_pods: dict[str, int] = {}

    async def run(self, on_synced) -> None:
        informers = [self.vms, self.vmis, self.pods, self.nodes]
        tasks = [asyncio.create_task(i.run()) for i in informers]
        await asyncio.gather(*(i.synced.wait() for i in informers))
        tasks += [
            asyncio.create_task(self.vm_queue.run()),
            asyncio.create_task(self.vmi_queue.run()),
            asyncio.create_task(self._heartbeat_loop()),
        ]
        await self._heartbeat_once()
        on_synced()
        await asyncio.gather(*tasks)

    # --- event routing -----------------------------------------------------------------------
    def _vm_changed(self, old: dict | None, new: dict | None) -> None:
        self.vm_queue.add(object_key(new or old))

    def _vmi_changed(self, old: dict | None, new: dict | None) -> None:
        key = object_key(new or old)
        self.vmi_queue.add(key)
        self.vm_queue.add(key)

    def _pod_changed(self, old: dict | None, new: dict | None) -> None:
        pod = new or old
        uid = pod["metadata"]["labels"].get(LABEL_CREATED_BY)
        if new is not None and old is None and uid in self._expected_pods:
            self._expected_pods[uid] -= 1
            if self._expected_pods[uid] <= 0:
                del self._expected_pods[uid]
        domain = pod["metadata"].get("annotations", {}).get("kubevirt.io/domain")
        if domain:
            self.vmi_queue.add((pod["metadata"]["namespace"], domain))

    def pods_of(self, vmi: dict) -> list[dict]:
        uid = vmi["metadata"]["uid"]
        namespace = vmi["metadata"]["namespace"]
        return [
            p
            for (ns, _), p in self.pods.cache.items()
            if ns == namespace and p["metadata"]["labels"].get(LABEL_CREATED_BY) == uid
        ]

    # --- VirtualMachine ----------------------------------------------------------------------
    async def sync_vm(self, key: Key) -> None:
        vm = self.vms.cache.get(key)
        if vm is None:
            return
        namespace, name = key
        vmi = self.vmis.cache.get(key)
        if vmi is not None and not _owned_by(vmi, vm):
            vmi = None  # a VMI of another VM generation is left to garbage collection
        deleting = bool(vm["metadata"].get("deletionTimestamp"))
        finalizers = vm["metadata"].get("finalizers") or []
        if not deleting and VM_FINALIZER not in finalizers:
            await self._patch_vm_metadata(namespace, name, {"finalizers": [*finalizers, VM_FINALIZER]})
            return
        action = vmi_action(vm, vmi)
        if action is Action.CREATE_VMI:
            await self._create(namespace, "virtualmachineinstances", vmi_from_vm(vm))
        elif action is Action.DELETE_VMI:
            await self._delete(namespace, "virtualmachineinstances", name)
        if (
            vmi is not None
            and vmi["metadata"].get("deletionTimestamp")
            and VM_FINALIZER in (vmi["metadata"].get("finalizers") or [])
            and vmi.get("status", {}).get("phase") in ("Succeeded", "Failed")
        ):
            remaining = [f for f in vmi["metadata"]["finalizers"] if f != VM_FINALIZER]
            await self._merge_patch(namespace, "virtualmachineinstances", name, {"metadata": {"finalizers": remaining}})
        if deleting:
            if vmi is None and VM_FINALIZER in finalizers:
                await self._patch_vm_metadata(
                    namespace, name, {"finalizers": [f for f in finalizers if f != VM_FINALIZER]}
                )
            return
        status = vm_status(vm, vmi)
        if status != vm.get("status"):
            await self.custom.patch_namespaced_custom_object_status(
                *KUBEVIRT,
                namespace,
                "virtualmachines",
                name,
                {"status": status},
                field_validation=STRICT,
                _content_type=MERGE_PATCH,
            )

    async def _patch_vm_metadata(self, namespace: str, name: str, metadata: dict) -> None:
        await self._merge_patch(namespace, "virtualmachines", name, {"metadata": metadata})

    # --- VirtualMachineInstance ---------------------------------------------------------------
    async def sync_vmi(self, key: Key) -> None:
        vmi = self.vmis.cache.get(key)
        if vmi is None:
            return
        namespace, name = key
        plan = plan_vmi(vmi, self.pods_of(vmi))
        uid = vmi["metadata"]["uid"]
        if plan.create_pod and uid not in self._expected_pods:
            self._expected_pods[uid] = 1
            try:
                await self.core.create_namespaced_pod(namespace, launcher_pod(vmi), field_validation=STRICT)
            except ApiException:
                self._expected_pods.pop(uid, None)
                raise
        for pod in plan.delete_pods:
            await _ignore_not_found(self.core.delete_namespaced_pod(pod, namespace))
        patch: dict = {}
        if plan.status is not None:
            patch["status"] = plan.status
        if plan.labels:
            patch["metadata"] = {"labels": plan.labels}
        if plan.finalizers is not None:
            patch.setdefault("metadata", {})["finalizers"] = plan.finalizers
        if patch:
            patch.setdefault("metadata", {})["resourceVersion"] = vmi["metadata"]["resourceVersion"]
            await self._merge_patch(namespace, "virtualmachineinstances", name, patch)

    # --- nodes: virt-handler's heartbeat -------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self._heartbeat_once()

    async def _heartbeat_once(self) -> None:
        """virt-handler runs on every Ready node and marks it schedulable; a dead host stops beating."""
        for node in list(self.nodes.cache.values()):
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", [])
            )
            if not ready:
                continue
            name = node["metadata"]["name"]
            patch = {"metadata": {"labels": {LABEL_SCHEDULABLE: "true"}, "annotations": {HEARTBEAT_ANNOTATION: now()}}}
            try:
                allocatable = node["status"].get("allocatable", {})
                if any(allocatable.get(resource) != count for resource, count in DEVICE_PLUGIN_RESOURCES.items()):
                    devices = {"status": {"capacity": DEVICE_PLUGIN_RESOURCES, "allocatable": DEVICE_PLUGIN_RESOURCES}}
                    await self.core.patch_node_status(name, devices, field_validation=STRICT)
                await self.core.patch_node(name, patch, field_validation=STRICT)
            except ApiException as error:
                log.warning("heartbeat for node %s failed: %s", name, error.reason)

    # --- writes ------------------------------------------------------------------------------
    async def _create(self, namespace: str, plural: str, body: dict) -> None:
        try:
            await self.custom.create_namespaced_custom_object(
                *KUBEVIRT, namespace, plural, body, field_validation=STRICT
            )
        except ApiException as error:
            if error.status != 409:
                raise

    async def _delete(self, namespace: str, plural: str, name: str) -> None:
        await _ignore_not_found(self.custom.delete_namespaced_custom_object(*KUBEVIRT, namespace, plural, name))

    async def _merge_patch(self, namespace: str, plural: str, name: str, body: dict) -> None:
        await _ignore_not_found(
            self.custom.patch_namespaced_custom_object(
                *KUBEVIRT, namespace, plural, name, body, field_validation=STRICT, _content_type=MERGE_PATCH
            )
        )


def _owned_by(vmi: dict, vm: dict) -> bool:
    return any(ref.get("uid") == vm["metadata"]["uid"] for ref in vmi["metadata"].get("ownerReferences", []))


async def _ignore_not_found(call) -> None:
    try:
        await call
    except ApiException as error:
        if error.status != 404:
            raise
