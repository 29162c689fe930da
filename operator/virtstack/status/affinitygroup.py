"""An AffinityGroup's status: its members, where they run, and where they break the rule (pure)."""

from __future__ import annotations

from collections import defaultdict

from ..api.affinitygroup import AffinityGroupSpec, AffinityGroupStatus, AffinityType, Topology
from ..api.conditions import Condition, ConditionStatus, merge_conditions, utc_now


def group_status(
    generation: int,
    spec: AffinityGroupSpec,
    placements: dict[str, tuple[str, str | None]],
    members: list[str],
    previous: AffinityGroupStatus,
    now: str | None = None,
) -> AffinityGroupStatus:
    """`placements`: running member -> (host, zone)."""
    by_place: dict[str, list[str]] = defaultdict(list)
    for member in sorted(placements):
        host, zone = placements[member]
        by_place[(zone or "?") if spec.topology is Topology.ZONE else host].append(member)
    unit = "zone" if spec.topology is Topology.ZONE else "host"
    if spec.type is AffinityType.HOST_ANTI_AFFINITY:
        violations = [
            f"{unit} {place} runs {', '.join(names)}" for place, names in sorted(by_place.items()) if len(names) > 1
        ]
    else:
        violations = (
            []
            if len(by_place) <= 1
            else [
                f"members run in {len(by_place)} {unit}s: "
                + "; ".join(f"{place}: {', '.join(names)}" for place, names in sorted(by_place.items()))
            ]
        )
    ready = Condition(
        type="Ready",
        status=ConditionStatus.TRUE,
        reason="Violated" if violations else "Satisfied",
        message="; ".join(violations) or f"{len(members)} members, {len(placements)} running, rule kept",
        observedGeneration=generation,
        lastTransitionTime=now or utc_now(),
    )
    return AffinityGroupStatus(
        members=members,
        memberCount=len(members),
        hosts=sorted({host for host, _ in placements.values()}),
        violations=violations,
        observedGeneration=generation,
        conditions=merge_conditions(previous.conditions, [ready]),
    )
