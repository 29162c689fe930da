"""AffinityGroups as scheduler terms, and the group's own status."""

from __future__ import annotations

import pytest
from virtstack.api.affinitygroup import AffinityGroupSpec, AffinityGroupStatus
from virtstack.builders.affinity import group_labels, pod_affinity
from virtstack.status.affinitygroup import group_status


def group(kind: str = "HostAntiAffinity", enforcement: str = "Required", topology: str = "Host") -> AffinityGroupSpec:
    return AffinityGroupSpec.model_validate({"type": kind, "enforcement": enforcement, "topology": topology})


def test_required_anti_affinity_is_a_required_pod_anti_affinity_term_per_host() -> None:
    terms = pod_affinity({"web": group()})
    assert terms == {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"ag.virtstack.io/web": "member"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    assert group_labels({"web": group()}) == {"ag.virtstack.io/web": "member"}


def test_preferred_zone_affinity_is_a_weighted_pod_affinity_term_per_zone() -> None:
    terms = pod_affinity({"db": group("HostAffinity", "Preferred", "Zone")})
    (preferred,) = terms["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["weight"] == 100
    assert preferred["podAffinityTerm"]["topologyKey"] == "topology.kubernetes.io/zone"


@pytest.mark.parametrize(
    ("spec", "placements", "violations"),
    [
        (group(), {"a": ("h1", "z1"), "b": ("h2", "z1")}, []),
        (group(), {"a": ("h1", "z1"), "b": ("h1", "z1")}, ["host h1 runs a, b"]),
        (group(topology="Zone"), {"a": ("h1", "z1"), "b": ("h2", "z1")}, ["zone z1 runs a, b"]),
        (group("HostAffinity"), {"a": ("h1", "z1"), "b": ("h1", "z1")}, []),
        (group("HostAffinity"), {"a": ("h1", "z1"), "b": ("h2", "z1")}, ["members run in 2 hosts: h1: a; h2: b"]),
    ],
)
def test_violations(spec: AffinityGroupSpec, placements: dict, violations: list[str]) -> None:
    status = group_status(
        1, spec, placements, sorted(placements) + ["stopped"], AffinityGroupStatus(), "2026-11-25T12:00:00Z"
    )
    assert status.violations == violations
    assert status.memberCount == 3 and status.members == ["a", "b", "stopped"]
    assert status.conditions[0].reason == ("Violated" if violations else "Satisfied")


def test_vms_listing_finds_the_namespaces_vms_that_name_it() -> None:
    from virtstack.controllers.base import vms_listing

    vms = {
        ("a", "web-1"): [{"spec": {"affinityGroups": ["spread"]}}],
        ("a", "web-2"): [{"spec": {"affinityGroups": ["other", "spread"]}}],
        ("a", "db"): [{"spec": {}}],
        ("b", "web-3"): [{"spec": {"affinityGroups": ["spread"]}}],
    }
    assert vms_listing(vms, "a", "affinityGroups", "spread") == [("a", "web-1"), ("a", "web-2")]
    assert vms_listing(vms, "a", "sshKeyPairs", "spread") == []
