"""A host stops reporting: its VMs are Down after hostDownAfter; HA VMs run again on another host."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

from .test_vm_lifecycle import status_of, vm_with, wait_state

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.simulator]
VICTIM = "host-a"


def test_host_failure_downs_non_ha_vms_and_restarts_ha_vms_elsewhere(cluster: Cluster, namespace: str) -> None:
    others = [node for node in cluster.plane.node_names() if node != VICTIM]
    cluster.kubectl("cordon", *others)
    try:
        cluster.apply(vm_with("survivor", highAvailability=True), namespace=namespace)
        cluster.apply(vm_with("casualty"), namespace=namespace)
        assert wait_state(cluster, namespace, "survivor", "Running")["host"] == VICTIM
        assert wait_state(cluster, namespace, "casualty", "Running")["host"] == VICTIM
    finally:
        cluster.kubectl("uncordon", *others)
    cluster.plane.fail_node(VICTIM)
    try:
        down = wait_state(cluster, namespace, "casualty", "Down", timeout=120)
        ready = condition_of({"status": down}, "Ready")
        assert ready["reason"] == "HostDown" and f"host {VICTIM} has not reported" in ready["message"]
        assert "it stays down" in ready["message"]
        warnings = [
            e
            for e in cluster.list("events.events.k8s.io", namespace)
            if e["regarding"]["name"] == "casualty" and e["type"] == "Warning" and e["reason"] == "Down"
        ]
        assert warnings and "HostDown" not in warnings[0]["note"] and VICTIM in warnings[0]["note"]

        moved = wait_for(
            lambda: (
                (s := status_of(cluster, namespace, "survivor")).get("state") == "Running"
                and s.get("host") not in (None, VICTIM)
                and s
            ),
            120,
            "survivor running on another host",
        )
        assert moved["host"] in others
        assert status_of(cluster, namespace, "casualty")["state"] == "Down", "a non-HA VM stays down"
    finally:
        cluster.plane.recover_node(VICTIM)
        wait_for(
            lambda: all(
                c["status"] == "True"
                for c in cluster.get("node", VICTIM)["status"]["conditions"]
                if c["type"] == "Ready"
            ),
            90,
            f"{VICTIM} Ready again",
        )
