"""A GPUProfile's capacity: what the nodes' device plugins advertise, and what running VMs hold (pure)."""

from __future__ import annotations

from ..api.conditions import Condition, ConditionStatus, merge_conditions, utc_now
from ..api.gpuprofile import GPUProfileSpec, GPUProfileStatus, NodeCapacity
from ..builders.quantity import whole_units


def profile_status(
    generation: int,
    spec: GPUProfileSpec,
    allocatable: dict[str, dict[str, str]],
    in_use: dict[str, int],
    previous: GPUProfileStatus,
    now: str | None = None,
) -> GPUProfileStatus:
    """`allocatable`: node -> its allocatable resources; `in_use`: node -> units running VMs hold there."""
    nodes = []
    for node in sorted(set(allocatable) | set(in_use)):
        capacity = whole_units(allocatable.get(node, {}).get(spec.resourceName, "0"))
        if capacity or in_use.get(node):
            nodes.append(NodeCapacity(name=node, capacity=capacity, allocated=in_use.get(node, 0)))
    capacity = sum(n.capacity for n in nodes)
    allocated = sum(n.allocated for n in nodes)
    if capacity:
        ready = Condition(
            type="Ready",
            status=ConditionStatus.TRUE,
            reason="Offered",
            message=f"{capacity - allocated} of {capacity} {spec.resourceName} free on {len(nodes)} hosts",
            observedGeneration=generation,
            lastTransitionTime=now or utc_now(),
        )
    else:
        ready = Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason="NoCapacity",
            message=f"no node advertises {spec.resourceName}: check the device plugin on the GPU hosts "
            "and spec.resourceName",
            observedGeneration=generation,
            lastTransitionTime=now or utc_now(),
        )
    return GPUProfileStatus(
        nodes=nodes,
        capacity=capacity,
        allocated=allocated,
        available=max(0, capacity - allocated),
        observedGeneration=generation,
        conditions=merge_conditions(previous.conditions, [ready]),
    )
