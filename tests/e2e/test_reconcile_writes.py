"""Reconcile is level-triggered and idempotent: a reconcile with nothing to change writes nothing.

Writes are counted from the API server's audit log by the operator's user agent.
"""

from __future__ import annotations

import time

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.audit import writes
from virtstack_testbed.testing import Cluster, wait_for

from .test_walking_skeleton import vsvm

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.simulator]
OPERATOR_AGENT = "virtstack/"


def operator_writes(cluster: Cluster, namespace: str) -> list:
    return [w for w in writes(cluster.plane, OPERATOR_AGENT) if w.namespace == namespace]


def settled(cluster: Cluster, namespace: str, quiet_seconds: float = 3.0) -> list:
    """The operator's writes once none has come for quiet_seconds."""
    last = operator_writes(cluster, namespace)
    while True:
        time.sleep(quiet_seconds)
        now = operator_writes(cluster, namespace)
        if now == last:
            return now
        last = now


def test_a_reconcile_with_nothing_to_change_writes_nothing(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("steady"), namespace=namespace)
    wait_for(
        lambda: (condition_of(cluster.get("vsvm", "steady", namespace), "Ready") or {}).get("status") == "True",
        60,
        "steady Ready",
    )
    before = settled(cluster, namespace)
    creation_cost = {(w.verb, w.resource, w.subresource) for w in before}
    print(f"operator writes from create to Ready: {len(before)}: {sorted(creation_cost)}")
    assert ("patch", "virtualmachines", "") in creation_cost, "the KubeVirt VM was applied"

    # An annotation is an event on our VM: the operator reconciles it, and must find nothing to do.
    cluster.kubectl("annotate", "vsvm", "steady", "-n", namespace, "example.com/touched=yes")
    cluster.kubectl("label", "virtualmachines.kubevirt.io", "steady", "-n", namespace, "example.com/touched=yes")
    after = settled(cluster, namespace)
    assert after == before, f"unexpected writes: {after[len(before) :]}"


def test_a_change_is_carried_out_with_few_writes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vsvm("mover"), namespace=namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "mover", namespace) or {}).get("status", {}).get("state") == "Running",
        60,
        "mover Running",
    )
    before = settled(cluster, namespace)
    cluster.apply(vsvm("mover", state="Stopped"), namespace=namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "mover", namespace) or {}).get("status", {}).get("state") == "Stopped",
        60,
        "mover Stopped",
    )
    change = settled(cluster, namespace)[len(before) :]
    print(f"operator writes for a stop: {len(change)}: {[(w.verb, w.resource, w.subresource) for w in change]}")
    assert sum(1 for w in change if w.resource == "virtualmachines" and not w.subresource) == 1, "one apply"
    assert all(w.code in (200, 201) for w in change), "none refused"
    assert {(w.verb, w.resource) for w in change} <= {("patch", "virtualmachines"), ("create", "events")}
