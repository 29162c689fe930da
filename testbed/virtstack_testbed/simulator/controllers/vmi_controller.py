"""KubeVirt's VMI controller and virt-handler's part of the VMI lifecycle (decisions in ../vmi.py).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vmi/lifecycle.go (launcher pod, phases,
finalizers), pkg/virt-handler/vm.go (Running, guest events) and the node-loss rule of
pkg/virt-controller/watch/node/node.go. Pods created but not yet seen by the informer are counted
per VMI uid (KubeVirt's expectations), so a stale cache never creates a second launcher pod.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubernetes_asyncio.client.exceptions import ApiException
from virtstack.workqueue import WorkQueue

from ..informer import Key
from ..launcher import launcher_pod
from ..vmi import FAILED_CREATE, VmiPlan, failed_create, plan_vmi
from .kube import KUBEVIRT, STRICT, api_error_message, ignore_not_found, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator


class VmiController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.queue = WorkQueue("vmi", self.sync)
        self._expected_pods: dict[str, int] = {}

    async def run(self) -> None:
        await self.queue.run()

    def pod_observed(self, vmi_uid: str | None) -> None:
        if vmi_uid in self._expected_pods:
            self._expected_pods[vmi_uid] -= 1
            if self._expected_pods[vmi_uid] <= 0:
                del self._expected_pods[vmi_uid]

    def _shared(self, vmi: dict) -> frozenset[str]:
        """The VMI's DataVolumes that ask for ReadWriteMany (PVCs are not watched: taken as unshared)."""
        namespace = vmi["metadata"]["namespace"]
        shared = set()
        for volume in (vmi.get("spec") or {}).get("volumes") or []:
            name = (volume.get("dataVolume") or {}).get("name")
            dv = self.sim.dvs.cache.get((namespace, name)) if name else None
            spec = (dv or {}).get("spec") or {}
            modes = (spec.get("pvc") or spec.get("storage") or {}).get("accessModes") or []
            if "ReadWriteMany" in modes:
                shared.add(name)
        return frozenset(shared)

    def _missing(self, vmi: dict) -> tuple[str, ...]:
        """The PVCs the VMI's volumes name (directly or through a DataVolume) that do not exist."""
        namespace = vmi["metadata"]["namespace"]
        claims = [
            (v.get("persistentVolumeClaim") or {}).get("claimName") or (v.get("dataVolume") or {}).get("name")
            for v in (vmi.get("spec") or {}).get("volumes") or []
        ]
        return tuple(c for c in claims if c and (namespace, c) not in self.sim.pvcs.cache)

    async def _create_pod(self, vmi: dict, plan: VmiPlan) -> ApiException | None:
        """The launcher pod; a refusal (a ResourceQuota, a policy) becomes an Event and the VMI's
        `Synchronized=False/FailedCreate`, and is returned so the sync fails after the status write."""
        uid = vmi["metadata"]["uid"]
        self._expected_pods[uid] = 1
        try:
            await self.sim.kube.core.create_namespaced_pod(
                vmi["metadata"]["namespace"], launcher_pod(vmi), field_validation=STRICT
            )
        except ApiException as error:
            self._expected_pods.pop(uid, None)
            if error.status not in (403, 422):
                raise  # outages, throttling: retried without a word
            message = api_error_message(error)
            await self.sim.kube.warn(vmi, FAILED_CREATE, f"Error creating pod: {message}")
            failed = failed_create(vmi, plan.status, message)
            plan.status = failed if failed != (vmi.get("status") or {}) else None
            return error
        return None

    async def sync(self, key: Key) -> None:
        vmi = self.sim.vmis.cache.get(key)
        if vmi is None:
            return
        namespace, name = key
        node_lost = self.sim.node.unresponsive((vmi.get("status") or {}).get("nodeName"))
        plan = plan_vmi(
            vmi,
            self.sim.pods_of(vmi),
            node_unresponsive=node_lost,
            shared_claims=self._shared(vmi),
            missing_claims=self._missing(vmi),
        )
        uid = vmi["metadata"]["uid"]
        core = self.sim.kube.core
        refused = await self._create_pod(vmi, plan) if plan.create_pod and uid not in self._expected_pods else None
        for pod in plan.delete_pods:
            await ignore_not_found(core.delete_namespaced_pod(pod, namespace))
        patch: dict = {}
        if plan.status is not None:
            patch["status"] = merge_patch_for(vmi.get("status") or {}, plan.status)
        if plan.labels:
            patch["metadata"] = {"labels": plan.labels}
        if plan.finalizers is not None:
            patch.setdefault("metadata", {})["finalizers"] = plan.finalizers
        if patch:
            # Optimistic concurrency: a patch computed from a stale cache fails with 409 and is retried.
            patch.setdefault("metadata", {})["resourceVersion"] = vmi["metadata"]["resourceVersion"]
            await self.sim.kube.patch(KUBEVIRT, namespace, "virtualmachineinstances", name, patch)
        if refused is not None:
            raise refused  # the sync error requeues the VMI with back-off, as KubeVirt's work queue does
