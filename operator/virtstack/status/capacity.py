"""The (N-1) capacity limit: how many VMs the cluster runs so that any one host can fail (pure).

CloudStack caps a cluster at (N-1) x its per-host VM limit over N hosts, so the VMs of a failed
host can restart on the others (a single host, with nowhere to fail over to, takes its own per-host
limit). A host here is a Node that is Ready, not cordoned, and that KubeVirt
runs VMs on (label `kubevirt.io/schedulable=true`, which virt-handler keeps). GPU hosts count: they
run non-GPU VMs too (last). A cordoned host does not: it takes no new VMs, so it cannot take a failed
host's either.

A VM holds room from the moment the operator lets it start (its KubeVirt VM's run strategy is not
Halted) until it is stopped through its spec or deleted and its VMI is gone. So an HA VM that KubeVirt
restarts never races a new VM for room, and a non-HA VM whose guest shut down keeps its room: asking
it to start again is never refused. A running VM is never stopped by the limit.

VMs that want to run and hold no room wait in one order, oldest creationTimestamp first (then
namespace and name), and the first `room` of them start. Every reconcile computes the same order
from the same indexes, so two VMs reconciled back to back cannot both take the last place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..api.conditions import Condition, ConditionStatus

Key = tuple[str, str]

CAPACITY_LIMIT = "CapacityLimit"
KUBEVIRT_SCHEDULABLE_LABEL = "kubevirt.io/schedulable"
FINAL_PHASES = ("Succeeded", "Failed")


def is_vm_host(node: dict) -> bool:
    """A node (as the nodes index keeps it) that can take a VM now."""
    return (
        bool(node.get("ready"))
        and not node.get("unschedulable")
        and (node.get("labels") or {}).get(KUBEVIRT_SCHEDULABLE_LABEL) == "true"
    )


def cluster_limit(hosts: int, per_host: int) -> int | None:
    """(N-1) x per-host; None when the setting is 0 (no limit). A single host has nowhere to fail
    over to: keeping it empty would protect nothing, so it takes its own per-host limit."""
    if per_host <= 0:
        return None
    return max(hosts - 1, min(hosts, 1)) * per_host


def holds_room(kubevirt_vm: dict | None, vmi: dict | None) -> bool:
    """Started by the operator (run strategy not Halted), or still on a host (a VMI not yet final)."""
    if kubevirt_vm is not None and (kubevirt_vm.get("spec") or {}).get("runStrategy", "Halted") != "Halted":
        return True
    return vmi is not None and (vmi.get("status") or {}).get("phase") not in FINAL_PHASES


def wants_room(vm: dict) -> bool:
    """A VM asked to run (spec.state Running is the default) and not being deleted."""
    return not vm["metadata"].get("deletionTimestamp") and (vm.get("spec") or {}).get("state", "Running") == "Running"


@dataclass(frozen=True)
class Capacity:
    """The cluster's room and the VMs waiting for it, in the order they get it."""

    hosts: int
    per_host: int
    limit: int | None
    holding: int
    queue: tuple[Key, ...]

    @property
    def room(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.holding)

    def admitted(self) -> tuple[Key, ...]:
        """The waiting VMs that may start now."""
        return self.queue if self.room is None else self.queue[: self.room]

    def admits(self, key: Key) -> bool:
        return key in self.admitted()

    def waiting_message(self) -> str:
        if self.hosts > 1:
            limit = (
                f"the limit is {self.limit} = ({self.hosts} Ready hosts - 1) x maxVMsPerHost {self.per_host}, "
                "keeping one host's worth free so that a host can fail"
            )
        else:
            limit = f"the limit is {self.limit} = maxVMsPerHost {self.per_host} on {self.hosts} Ready hosts"
        return (
            f"not started: the cluster's VM limit is reached: {self.holding} VMs run or are starting, {limit}. "
            "The VM starts by itself when another VM stops or is deleted or a host becomes Ready (oldest VM "
            "first); to run more VMs add hosts or raise the operator setting maxVMsPerHost"
        )


def plan_capacity(
    vms: Mapping[Key, dict],
    kubevirt_vms: Mapping[Key, dict],
    vmis: Mapping[Key, dict],
    nodes: Iterable[dict],
    per_host: int,
    started: Iterable[Key] = (),
    blocked: Iterable[Key] = (),
) -> Capacity:
    """The room and the queue, from the indexes.

    `started`: VMs the operator let start whose KubeVirt VM the index does not show so yet (the
    index follows the API server a little behind); they hold room. `blocked`: VMs that cannot be
    built (a missing input): they keep no place in the queue, so they do not hold up the others.
    """
    started, blocked = set(started), set(blocked)
    holders = {key for key in set(kubevirt_vms) | set(vmis) if holds_room(kubevirt_vms.get(key), vmis.get(key))}
    holders |= {key for key in started if key in vms and wants_room(vms[key])}
    waiting = [
        (vm["metadata"].get("creationTimestamp", ""), key)
        for key, vm in vms.items()
        if key not in holders and key not in blocked and wants_room(vm)
    ]
    hosts = sum(1 for node in nodes if is_vm_host(node))
    return Capacity(
        hosts=hosts,
        per_host=per_host,
        limit=cluster_limit(hosts, per_host),
        holding=len(holders),
        queue=tuple(key for _, key in sorted(waiting)),
    )


def unscheduled_conditions(ready: Condition, reason: str, message: str) -> tuple[Condition, Condition]:
    """Ready and Scheduled of a VM held back before any host is chosen: both say why, and the fix."""
    scheduled = ready.model_copy(
        update={"type": "Scheduled", "status": ConditionStatus.FALSE, "reason": reason, "message": message}
    )
    return ready.model_copy(update={"reason": reason, "message": message}), scheduled
