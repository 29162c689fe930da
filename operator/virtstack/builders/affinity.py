"""AffinityGroups as pod (anti-)affinity on the VM's launcher pods (pure): the kube-scheduler enforces them.

Each member's pods carry the label `ag.virtstack.io/<group>`; each member gets one term over that
label. The scope is the namespace, as CloudStack scopes groups to an account.
"""

from __future__ import annotations

from ..api.affinitygroup import AffinityGroupSpec, AffinityType, Enforcement, Topology
from .placement import HOSTNAME_LABEL, ZONE_LABEL

GROUP_LABEL_PREFIX = "ag.virtstack.io/"
MEMBER = "member"
PREFERRED_WEIGHT = 100


def group_label(group: str) -> str:
    return f"{GROUP_LABEL_PREFIX}{group}"


def group_labels(groups: dict[str, AffinityGroupSpec]) -> dict[str, str]:
    return {group_label(name): MEMBER for name in groups}


def pod_affinity(groups: dict[str, AffinityGroupSpec]) -> dict:
    """{"podAffinity": ..., "podAntiAffinity": ...} for the groups that exist (sorted: stable output)."""
    result: dict = {}
    for name in sorted(groups):
        group = groups[name]
        kind = "podAntiAffinity" if group.type is AffinityType.HOST_ANTI_AFFINITY else "podAffinity"
        term = {
            "labelSelector": {"matchLabels": {group_label(name): MEMBER}},
            "topologyKey": ZONE_LABEL if group.topology is Topology.ZONE else HOSTNAME_LABEL,
        }
        section = result.setdefault(kind, {})
        if group.enforcement is Enforcement.REQUIRED:
            section.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append(term)
        else:
            section.setdefault("preferredDuringSchedulingIgnoredDuringExecution", []).append(
                {"weight": PREFERRED_WEIGHT, "podAffinityTerm": term}
            )
    return result
