"""Reconcile one GPUProfile's capacity from the Nodes and the GPU VMs that run."""

from __future__ import annotations

from typing import Any

from ..api.gpuprofile import GPUProfileSpec, GPUProfileStatus
from ..kube import Kube
from ..status.gpuprofile import profile_status
from .base import Controller, Key, one

PLURAL = "gpuprofiles"
HOLDING_PHASES = ("Scheduled", "Running")  # the launcher pod is bound: it holds its devices


class GPUProfileController(Controller):
    name = "gpuprofile"
    plural = PLURAL
    cluster_scoped = True

    def __init__(self, kube: Kube) -> None:
        super().__init__(kube)
        self._allocatable: dict[str, dict] = {}

    def node_changed(self, node: str, indexes: Any) -> None:
        """Requeue the profiles when a node's allocatable resources changed; heartbeats cost nothing."""
        self.indexes = indexes
        allocatable = (one(indexes.nodes, node) or {}).get("allocatable")
        if self._allocatable.get(node) == allocatable:
            return
        self._allocatable[node] = allocatable
        for profile in indexes.gpu_profiles:
            self.queue.add(("", profile))

    def primary_index(self) -> Any:
        return {("", name): store for name, store in self.indexes.gpu_profiles.items()}

    async def reconcile(self, key: Key) -> None:
        profile = one(self.indexes.gpu_profiles, key[1])
        if profile is None or profile["metadata"].get("deletionTimestamp"):
            return
        name = key[1]
        in_use: dict[str, int] = {}
        for vm_key, store in self.indexes.vms.items():
            for vm in store:
                gpu = (vm.get("spec") or {}).get("gpu")
                if not gpu or gpu.get("profile") != name:
                    continue
                status = (one(self.indexes.vmis, vm_key) or {}).get("status") or {}
                if status.get("nodeName") and status.get("phase") in HOLDING_PHASES:
                    in_use[status["nodeName"]] = in_use.get(status["nodeName"], 0) + gpu.get("count", 1)
        allocatable = {node: one(self.indexes.nodes, node)["allocatable"] for node in self.indexes.nodes}
        current = profile.get("status") or {}
        status = profile_status(
            profile["metadata"].get("generation", 1),
            GPUProfileSpec.model_validate(profile["spec"]),
            allocatable,
            in_use,
            GPUProfileStatus.model_validate(current),
        )
        await self.write_status(profile, status)
