"""The VM controller's gate for the (N-1) capacity limit: which VMs may start now (status/capacity.py decides).

The decision and its record happen without an `await` between them: the work queue runs several
keys at once on one event loop, and a VM let start is counted from that moment, before the index
shows its KubeVirt VM started.
"""

from __future__ import annotations

from typing import Any

from ..status.capacity import Capacity, holds_room, plan_capacity, wants_room
from .base import Key, one


def _entries(index: Any) -> dict[Key, dict]:
    return {key: found for key in index if (found := one(index, key)) is not None}


class CapacityGate:
    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._started: set[Key] = set()  # let start; the index may not show it yet
        self._kept: set[Key] = set()  # halted by the operator for a while (a revert): they keep their room
        self._blocked: set[Key] = set()  # cannot be built: no place in the queue
        self._waiting: set[Key] = set()
        self._last: tuple[int, int | None] | None = None

    def plan(self, indexes: Any) -> Capacity:
        vms, kubevirt_vms, vmis = _entries(indexes.vms), _entries(indexes.kubevirt_vms), _entries(indexes.vmis)
        self._started = {
            key
            for key in self._started
            if key in vms and wants_room(vms[key]) and not holds_room(kubevirt_vms.get(key), vmis.get(key))
        }
        nodes = [one(indexes.nodes, name) or {} for name in indexes.nodes]
        holding = self._started | self._kept
        return plan_capacity(vms, kubevirt_vms, vmis, nodes, self.per_host, holding, self._blocked)

    def wait_message(
        self,
        key: Key,
        wants_to_run: bool,
        kubevirt_vm: dict | None,
        vmi: dict | None,
        indexes: Any,
        kept: bool = False,
    ) -> str | None:
        """None when the VM may run (or does not ask to); else why it waits. Records a start it allows.

        `kept`: the operator halts the VM for a while (a revert, a reinstall, a reset on reboot) and starts
        it again afterwards: it keeps the room it holds, which no waiting VM may take meanwhile. Kept in
        memory: an operator restarted mid-way forgets it, and an older waiting VM may take the room."""
        self._blocked.discard(key)
        if kept and (holds_room(kubevirt_vm, vmi) or key in self._started):
            self._kept.add(key)
        elif not kept and key in self._kept:
            self._kept.discard(key)
            self._started.add(key)  # the revert is over: it starts again in the room it kept
        if self.per_host <= 0 or not wants_to_run or key in self._kept:
            self._waiting.discard(key)
            return None
        if holds_room(kubevirt_vm, vmi) or key in self._started:
            self._waiting.discard(key)
            return None
        capacity = self.plan(indexes)
        if capacity.admits(key):
            self._started.add(key)
            self._waiting.discard(key)
            return None
        self._waiting.add(key)
        return capacity.waiting_message()

    def blocked(self, key: Key) -> None:
        """The VM cannot be built now: it neither holds nor waits for room."""
        self._blocked.add(key)
        self._started.discard(key)
        self._kept.discard(key)
        self._waiting.discard(key)

    def forget(self, key: Key) -> None:
        self._started.discard(key)
        self._kept.discard(key)
        self._waiting.discard(key)
        self._blocked.discard(key)

    def to_requeue(self, indexes: Any) -> list[Key]:
        """The waiting VMs to reconcile again when the room or the limit may have changed; cheap when none wait."""
        if not self._waiting:
            return []
        capacity = self.plan(indexes)
        summary = (capacity.holding, capacity.limit)
        if summary == self._last:
            return []
        self._last = summary
        return sorted(self._waiting)
