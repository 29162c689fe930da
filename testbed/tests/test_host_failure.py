"""A host fails when its kwok stops heartbeating: the node-lifecycle controller marks it NotReady and unreachable."""

from __future__ import annotations

import pytest
from virtstack_testbed.testing import Cluster, wait_for

UNREACHABLE = "node.kubernetes.io/unreachable"


def node_state(cluster: Cluster, name: str) -> tuple[str, set[tuple[str, str]]]:
    node = cluster.get("node", name)
    ready = next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")
    return ready, {(t["key"], t["effect"]) for t in node["spec"].get("taints", [])}


@pytest.mark.simulator
def test_killing_a_hosts_kwok_makes_its_node_not_ready_and_unreachable(cluster: Cluster) -> None:
    node = "host-b"
    cluster.plane.fail_node(node)
    try:

        def unreachable() -> bool:
            ready, taints = node_state(cluster, node)
            return ready != "True" and {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= taints

        wait_for(unreachable, 90, f"{node} NotReady with the unreachable taints")
        others = [n for n in cluster.plane.node_names() if n != node]
        assert all(node_state(cluster, n)[0] == "True" for n in others), "the other hosts are unaffected"
    finally:
        cluster.plane.recover_node(node)
        wait_for(lambda: node_state(cluster, node) == ("True", set()), 90, f"{node} Ready and untainted again")
