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


def membership_change(vmi: dict | None, groups: dict[str, AffinityGroupSpec]) -> str | None:
    """How the running VMI's groups (its pod labels, fixed at its start) differ from the groups the VM
    is now built with; None when they agree or nothing runs. The difference applies at the next start."""
    if vmi is None or vmi["metadata"].get("deletionTimestamp"):
        return None
    if (vmi.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    labels = vmi["metadata"].get("labels") or {}
    running = {key.removeprefix(GROUP_LABEL_PREFIX) for key in labels if key.startswith(GROUP_LABEL_PREFIX)}
    joins, leaves = sorted(set(groups) - running), sorted(running - set(groups))
    changes = [f"joins AffinityGroup {', '.join(joins)}"] if joins else []
    changes += [f"leaves AffinityGroup {', '.join(leaves)}"] if leaves else []
    return "; ".join(changes) or None
