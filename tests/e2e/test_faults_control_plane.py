"""The API server and etcd restart under a running operator: it reconnects by itself and converges."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

from .conftest import Operator
from .test_operator_crash import kubevirt_vms_by_owner
from .test_walking_skeleton import vsvm

pytestmark = pytest.mark.simulator


def ready(cluster: Cluster, namespace: str, name: str) -> bool:
    found = condition_of(cluster.get("vsvm", name, namespace), "Ready")
    return bool(found and found["status"] == "True")


def test_operator_reconnects_after_apiserver_and_etcd_restarts(
    cluster: Cluster, namespace: str, operator: Operator
) -> None:
    process = operator.process
    first = [f"first-{i}" for i in range(4)]
    cluster.apply(*(vsvm(name) for name in first), namespace=namespace)
    cluster.plane.restart_control_plane("kube-apiserver", down_seconds=3)
    for name in first:
        wait_for(lambda n=name: ready(cluster, namespace, n), 120, f"{name} Ready after the API server restart")
    # Watches are open again: what changes now is seen now, not at the next resync.
    cluster.apply(vsvm("after-apiserver"), namespace=namespace)
    wait_for(lambda: ready(cluster, namespace, "after-apiserver"), 60, "a VM created after the restart Ready")

    cluster.plane.restart_control_plane("etcd", down_seconds=3)
    cluster.apply(vsvm("after-etcd"), vsvm("first-0", state="Stopped"), namespace=namespace)
    wait_for(lambda: ready(cluster, namespace, "after-etcd"), 90, "a VM created after the etcd restart Ready")
    wait_for(
        lambda: (cluster.get("vsvm", "first-0", namespace) or {}).get("status", {}).get("state") == "Stopped",
        90,
        "a stop asked for after the etcd restart carried out",
    )
    assert operator.process is process and process.poll() is None, "the same operator process, never restarted"
    assert cluster.plane.processes["kubevirt-simulator"].is_running(), "the simulator outlives the restarts too"
    uids = {vm["metadata"]["uid"] for vm in cluster.list("vsvm", namespace)}
    owners = kubevirt_vms_by_owner(cluster, namespace)
    assert set(owners) == uids and set(owners.values()) == {1}, "exactly one KubeVirt VM per VM"
