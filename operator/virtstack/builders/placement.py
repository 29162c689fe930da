"""Where a VM may run, as scheduler constraints on the KubeVirt VM template (pure).

The real kube-scheduler places the launcher pod; nothing here picks a host itself.
"""

from __future__ import annotations

from ..api.settings import SchedulerNames
from ..api.virtualmachine import Allocation, Placement

ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
# Hosts declare the OS types they suit with this label (value: the OS type, as in spec.osPreference).
OS_PREFERENCE_LABEL = "virtstack.io/os-preference"
OS_PREFERENCE_WEIGHT = 50


def node_selector(placement: Placement | None) -> dict[str, str]:
    if placement is None:
        return {}
    selector = dict(placement.hostTags)
    if placement.zone:
        selector[ZONE_LABEL] = placement.zone
    if placement.host:
        selector[HOSTNAME_LABEL] = placement.host
    return selector


def preferred_nodes(placement: Placement | None) -> list[dict]:
    """OS preference: prefer hosts labelled for the OS type, fall back to any host."""
    if placement is None or not placement.osPreference:
        return []
    term = {"matchExpressions": [{"key": OS_PREFERENCE_LABEL, "operator": "In", "values": [placement.osPreference]}]}
    return [{"weight": OS_PREFERENCE_WEIGHT, "preference": term}]


def scheduler_name(placement: Placement | None, names: SchedulerNames) -> str:
    """Spread (CloudStack horizontal allocation) or Pack (vertical), as two kube-scheduler profiles."""
    allocation = placement.allocation if placement is not None else Allocation.SPREAD
    return names.pack if allocation is Allocation.PACK else names.spread
