"""Reconcile one GPUProfile's capacity from the Nodes and the VMIs that hold its devices."""

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

    def devices_changed(self, resources: set[str], indexes: Any) -> None:
        """A VMI with these GPUs changed or went: requeue the profiles of those resources."""
        self.indexes = indexes
        for name, store in indexes.gpu_profiles.items():
            if any((profile.get("spec") or {}).get("resourceName") in resources for profile in store):
                self.queue.add(("", name))

    def primary_index(self) -> Any:
        return {("", name): store for name, store in self.indexes.gpu_profiles.items()}

    async def reconcile(self, key: Key) -> None:
        profile = self.fresh(key, one(self.indexes.gpu_profiles, key[1]))
        if profile is None or profile["metadata"].get("deletionTimestamp"):
            return
        spec = GPUProfileSpec.model_validate(profile["spec"])
        # Counted from the VMIs, whose launcher pods hold the devices: a VM being deleted holds them
        # until its VMI is gone, and the VMI's deletion requeues the profile (devices_changed).
        in_use: dict[str, int] = {}
        for store in self.indexes.vmis.values():
            for vmi in store:
                status = vmi.get("status") or {}
                taken = vmi.get("gpus", []).count(spec.resourceName)
                if taken and status.get("nodeName") and status.get("phase") in HOLDING_PHASES:
                    in_use[status["nodeName"]] = in_use.get(status["nodeName"], 0) + taken
        allocatable = {node: one(self.indexes.nodes, node)["allocatable"] for node in self.indexes.nodes}
        current = profile.get("status") or {}
        status = profile_status(
            profile["metadata"].get("generation", 1),
            spec,
            allocatable,
            in_use,
            GPUProfileStatus.model_validate(current),
        )
        await self.write_status(profile, status)
