"""AffinityGroups as scheduler terms, and the group's own status."""

from __future__ import annotations

import pytest
from virtstack.api.affinitygroup import AffinityGroupSpec, AffinityGroupStatus
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus
from virtstack.builders.affinity import group_labels, membership_change, pod_affinity
from virtstack.status.affinitygroup import group_status
from virtstack.status.virtualmachine import Observed, compute_status


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


def running_vmi(*groups: str, phase: str = "Running") -> dict:
    return {"metadata": {"labels": group_labels(dict.fromkeys(groups, group()))}, "status": {"phase": phase}}


def test_membership_changes_of_a_running_vm_wait_for_its_next_start() -> None:
    assert membership_change(running_vmi("a"), {"a": group()}) is None
    assert membership_change(running_vmi("a"), {"a": group(), "b": group()}) == "joins AffinityGroup b"
    assert membership_change(running_vmi("a", "c"), {"b": group()}) == (
        "joins AffinityGroup b; leaves AffinityGroup a, c"
    )
    assert membership_change(running_vmi("a", phase="Succeeded"), {}) is None, "nothing runs"
    assert membership_change(None, {"a": group()}) is None

    spec = VirtualMachineSpec.model_validate({"source": {"template": {"image": "x"}}, "affinityGroups": ["b"]})
    kubevirt_vm = {"spec": {"runStrategy": "Once"}, "status": {"printableStatus": "Running", "runStrategy": "Once"}}
    observed = Observed(kubevirt_vm=kubevirt_vm, vmi=None, instance_name="i-1", groups_pending="joins AffinityGroup b")
    conditions = {c.type: c for c in compute_status(1, spec, observed, VirtualMachineStatus(), "t").conditions}
    restart = conditions["RestartRequired"]
    assert (restart.status, restart.reason) == ("True", "AffinityGroupsChanged")
    assert restart.message.startswith("the VM joins AffinityGroup b when it next starts")
    assert (conditions["AffinityGroups"].status, conditions["AffinityGroups"].reason) == ("False", "PendingRestart")
