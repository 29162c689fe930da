"""AffinityGroups carried out by the real kube-scheduler on fake hosts (four hosts, two zones)."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_condition, wait_for

from .test_vm_lifecycle import status_of, vm_with, wait_state

pytestmark = pytest.mark.usefixtures("operator")
API = "virtstack.io/v1alpha1"


def affinity_group(name: str, kind: str = "HostAntiAffinity", **spec: str) -> dict:
    return {"apiVersion": API, "kind": "AffinityGroup", "metadata": {"name": name}, "spec": {"type": kind, **spec}}


def group_status(cluster: Cluster, namespace: str, name: str) -> dict:
    return (cluster.get("ag", name, namespace) or {}).get("status", {})


def scheduled(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return condition_of(cluster.get("vsvm", name, namespace), "Scheduled")


def test_required_anti_affinity_one_member_per_host_and_the_extra_one_waits(cluster: Cluster, namespace: str) -> None:
    cluster.apply(affinity_group("spread"), namespace=namespace)
    hosts = len(cluster.plane.node_names()) if cluster.plane else len(cluster.list("nodes"))
    names = [f"member-{i}" for i in range(hosts + 1)]
    for name in names[:-1]:
        cluster.apply(vm_with(name, affinityGroups=["spread"]), namespace=namespace)
    placed = {wait_state(cluster, namespace, name, "Running")["host"] for name in names[:-1]}
    assert len(placed) == hosts, "one member per host"

    cluster.apply(vm_with(names[-1], affinityGroups=["spread"]), namespace=namespace)
    waiting = wait_for(
        lambda: (c := scheduled(cluster, namespace, names[-1])) and c["status"] == "False" and c,
        60,
        "the extra member unscheduled",
    )
    assert waiting["reason"] == "InsufficientCapacity" and "AffinityGroup spread" in waiting["message"]
    status = wait_for(
        lambda: (s := group_status(cluster, namespace, "spread")).get("memberCount") == hosts + 1 and s,
        30,
        "the group counts its members",
    )
    assert status["members"] == sorted(names) and status["violations"] == []

    cluster.kubectl("delete", "vsvm", names[0], "-n", namespace)
    wait_state(cluster, namespace, names[-1], "Running")


def test_preferred_anti_affinity_runs_anyway_and_reports_the_violation(cluster: Cluster, namespace: str) -> None:
    cluster.apply(affinity_group("soft", enforcement="Preferred"), namespace=namespace)
    cluster.kubectl("cordon", *[n for n in cluster.plane.node_names() if n != "host-b"])
    try:
        for name in ("soft-a", "soft-b"):
            cluster.apply(vm_with(name, affinityGroups=["soft"]), namespace=namespace)
            wait_state(cluster, namespace, name, "Running")
    finally:
        cluster.kubectl("uncordon", *[n for n in cluster.plane.node_names() if n != "host-b"])
    status = wait_for(
        lambda: (s := group_status(cluster, namespace, "soft")).get("violations") and s, 30, "a reported violation"
    )
    assert status["violations"] == ["host host-b runs soft-a, soft-b"]
    assert condition_of({"status": status}, "Ready")["reason"] == "Violated"


def test_host_affinity_keeps_members_together_and_zone_anti_affinity_spreads_zones(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        affinity_group("together", "HostAffinity"), affinity_group("zones", topology="Zone"), namespace=namespace
    )
    for index in range(3):
        cluster.apply(vm_with(f"pal-{index}", affinityGroups=["together"]), namespace=namespace)
    assert len({wait_state(cluster, namespace, f"pal-{i}", "Running")["host"] for i in range(3)}) == 1
    for index in range(2):
        cluster.apply(vm_with(f"far-{index}", affinityGroups=["zones"]), namespace=namespace)
    assert {wait_state(cluster, namespace, f"far-{i}", "Running")["zone"] for i in range(2)} == {"zone-a", "zone-b"}


def test_deleting_a_group_leaves_members_running_and_they_report_it(cluster: Cluster, namespace: str) -> None:
    cluster.apply(affinity_group("temporary"), namespace=namespace)
    cluster.apply(vm_with("keeper", affinityGroups=["temporary"]), namespace=namespace)
    first = wait_state(cluster, namespace, "keeper", "Running")
    cluster.kubectl("delete", "ag", "temporary", "-n", namespace)
    missing = wait_condition(
        cluster, "vsvm", "keeper", namespace, "AffinityGroups", 30, "the missing group reported", status="False"
    )
    assert missing["reason"] == "GroupMissing" and "AffinityGroup temporary does not exist" in missing["message"]
    assert status_of(cluster, namespace, "keeper")["host"] == first["host"], "still running where it was"
    template = cluster.get("virtualmachines.kubevirt.io", "keeper", namespace)["spec"]["template"]
    affinity = template["spec"].get("affinity", {})
    assert "podAntiAffinity" not in affinity and "ag.virtstack.io/temporary" not in template["metadata"]["labels"]


def test_deleting_a_group_then_restarting_a_member_removes_the_constraint_and_disturbs_nothing_else(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(affinity_group("apart"), namespace=namespace)
    for name in ("apart-a", "apart-b"):
        cluster.apply(vm_with(name, affinityGroups=["apart"]), namespace=namespace)
    first = {name: wait_state(cluster, namespace, name, "Running") for name in ("apart-a", "apart-b")}
    assert first["apart-a"]["host"] != first["apart-b"]["host"]
    vmi_uid = {name: cluster.get("vmi", name, namespace)["metadata"]["uid"] for name in ("apart-a", "apart-b")}
    cluster.kubectl("delete", "ag", "apart", "-n", namespace)
    wait_condition(
        cluster, "vsvm", "apart-b", namespace, "AffinityGroups", 30, "the missing group reported", status="False"
    )
    # Only apart-a's host takes VMs now: under the group's rule apart-b could not start there.
    others = [n for n in cluster.plane.node_names() if n != first["apart-a"]["host"]]
    cluster.kubectl("cordon", *others)
    try:
        cluster.apply(
            vm_with("apart-b", affinityGroups=["apart"], rebootRequestedAt="2026-11-25T16:00:00Z"), namespace=namespace
        )
        wait_for(
            lambda: status_of(cluster, namespace, "apart-b").get("lastRebootedAt") == "2026-11-25T16:00:00Z",
            60,
            "apart-b restarted",
        )
        restarted = wait_state(cluster, namespace, "apart-b", "Running")
    finally:
        cluster.kubectl("uncordon", *others)
    assert restarted["host"] == first["apart-a"]["host"], "the group's anti-affinity no longer applies"
    assert "podAntiAffinity" not in (cluster.get("vmi", "apart-b", namespace)["spec"].get("affinity") or {})
    assert cluster.get("vmi", "apart-a", namespace)["metadata"]["uid"] == vmi_uid["apart-a"], "apart-a undisturbed"
    assert status_of(cluster, namespace, "apart-a")["host"] == first["apart-a"]["host"]


def test_joining_a_group_while_running_applies_at_the_next_start(cluster: Cluster, namespace: str) -> None:
    cluster.apply(affinity_group("later"), namespace=namespace)
    cluster.apply(vm_with("joiner"), namespace=namespace)
    wait_state(cluster, namespace, "joiner", "Running")
    first = cluster.get("vmi", "joiner", namespace)["metadata"]["uid"]
    cluster.apply(vm_with("joiner", affinityGroups=["later"]), namespace=namespace)
    restart = wait_for(
        lambda: condition_of(cluster.get("vsvm", "joiner", namespace), "RestartRequired"), 30, "RestartRequired"
    )
    assert (restart["status"], restart["reason"]) == ("True", "AffinityGroupsChanged")
    assert "joins AffinityGroup later when it next starts" in restart["message"]
    groups = condition_of(cluster.get("vsvm", "joiner", namespace), "AffinityGroups")
    assert (groups["status"], groups["reason"]) == ("False", "PendingRestart")
    vmi = cluster.get("vmi", "joiner", namespace)
    assert vmi["metadata"]["uid"] == first and "ag.virtstack.io/later" not in vmi["metadata"]["labels"]

    cluster.apply(
        vm_with("joiner", affinityGroups=["later"], rebootRequestedAt="2026-11-25T17:00:00Z"), namespace=namespace
    )
    wait_for(
        lambda: condition_of(cluster.get("vsvm", "joiner", namespace), "RestartRequired") is None,
        60,
        "RestartRequired cleared by the start",
    )
    restarted = wait_for(
        lambda: (vmi := cluster.get("vmi", "joiner", namespace)) and vmi["metadata"]["uid"] != first and vmi,
        60,
        "the new VMI of the restart",
    )
    assert restarted["metadata"]["labels"]["ag.virtstack.io/later"] == "member"
    wait_condition(cluster, "vsvm", "joiner", namespace, "AffinityGroups", 30, "the group applied", status="True")
