"""Reconcile one AffinityGroup's status from its members (VMs listing it) and where their VMIs run."""

from __future__ import annotations

from typing import Any

from ..api.affinitygroup import AffinityGroupSpec, AffinityGroupStatus
from ..builders.placement import ZONE_LABEL
from ..status.affinitygroup import group_status
from .base import Controller, Key, one, vms_listing

PLURAL = "affinitygroups"


class AffinityGroupController(Controller):
    name = "affinitygroup"
    plural = PLURAL

    def primary_index(self) -> Any:
        return self.indexes.groups

    async def reconcile(self, key: Key) -> None:
        group = self.fresh(key, one(self.indexes.groups, key))
        if group is None or group["metadata"].get("deletionTimestamp"):
            return
        namespace, name = key
        members = [vm_name for _, vm_name in vms_listing(self.indexes.vms, namespace, "affinityGroups", name)]
        placements = {}
        for member in members:
            host = ((one(self.indexes.vmis, (namespace, member)) or {}).get("status") or {}).get("nodeName")
            if host:
                node = one(self.indexes.nodes, host) or {}
                placements[member] = (host, node.get("labels", {}).get(ZONE_LABEL))
        current = group.get("status") or {}
        status = group_status(
            group["metadata"].get("generation", 1),
            AffinityGroupSpec.model_validate(group["spec"]),
            placements,
            members,
            AffinityGroupStatus.model_validate(current),
        )
        await self.write_status(group, status)
