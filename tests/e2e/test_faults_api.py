"""The operator against a misbehaving API: throttling, conflicts and silent watches, through a fault proxy.

The session's operator is paused meanwhile, so the one behind the proxy does all the work.
"""

from __future__ import annotations

import time

import pytest
from virtstack.kube import REQUEST_TIMEOUT_SECONDS
from virtstack.objects import condition_of
from virtstack_testbed.faultproxy import FaultProxy
from virtstack_testbed.testing import Cluster, wait_for

from .conftest import Operator
from .test_walking_skeleton import vsvm

pytestmark = pytest.mark.simulator
INACTIVITY_SECONDS = 8


@pytest.fixture
def proxied(cluster: Cluster, operator: Operator):
    operator.stop()
    proxy = FaultProxy(cluster.plane).start()
    behind = Operator(
        cluster,
        env={"KUBECONFIG": proxy.kubeconfig},
        overrides={"watchInactivityTimeout": f"{INACTIVITY_SECONDS}s"},
    )
    try:
        behind.start()
        yield proxy, behind
    finally:
        proxy.mute(False)
        if behind.process is not None:
            behind.stop()
        proxy.stop()
        operator.start()


def ready(cluster: Cluster, namespace: str, name: str) -> dict | None:
    return (c := condition_of(cluster.get("vsvm", name, namespace), "Ready")) and c["status"] == "True" and c


def test_throttling_and_conflicts_are_retried_with_backoff_never_reported_as_failures(
    cluster: Cluster, namespace: str, proxied
) -> None:
    proxy, behind = proxied
    proxy.faults.throttle_share = 1.0  # every write refused: the retries must slow down
    cluster.apply(vsvm("throttled"), namespace=namespace)
    time.sleep(8)
    attempts = sum(n for path, n in proxy.faults.writes.items() if path.endswith("/virtualmachines/throttled"))
    assert 3 <= attempts <= 12, f"{attempts} tries in 8 s: retried, with a growing delay (not a tight loop)"
    status = (cluster.get("vsvm", "throttled", namespace) or {}).get("status") or {}
    assert status.get("state") != "Error", "throttling is not a failure of the VM"

    proxy.faults.throttle_share, proxy.faults.conflict_share = 0.25, 0.25
    names = [f"busy-{i}" for i in range(8)]
    for name in names:
        cluster.apply(vsvm(name), namespace=namespace)
    for name in ["throttled", *names]:
        wait_for(lambda n=name: ready(cluster, namespace, n), 120, f"{name} Ready despite 429s and 409s")
    assert proxy.faults.injected[429] > 0 and proxy.faults.injected[409] > 0
    for vm in cluster.list("vsvm", namespace):
        for found in vm["status"]["conditions"]:
            assert found["reason"] != "RefusedByAPIServer", f"{vm['metadata']['name']}: {found}"
    warnings = [e for e in cluster.list("events.events.k8s.io", namespace) if e["type"] == "Warning"]
    assert not warnings, f"no Warning Event for a transient API error: {warnings}"
    assert "429" in behind.log_path.read_text(), "a throttled write is logged as a retry"


def test_a_silent_watch_is_noticed_and_reopened(cluster: Cluster, namespace: str, proxied) -> None:
    proxy, _ = proxied
    cluster.apply(vsvm("before"), namespace=namespace)
    wait_for(lambda: ready(cluster, namespace, "before"), 60, "before Ready")
    watches = proxy.faults.watches
    proxy.mute(True)  # every open watch goes silent; the sockets stay open
    cluster.apply(vsvm("during"), namespace=namespace)
    wait_for(
        lambda: ready(cluster, namespace, "during"),
        INACTIVITY_SECONDS + 50,
        "a VM created while the watches were silent becomes Ready",
    )
    assert proxy.faults.watches > watches, "the watches were opened again"


def test_a_write_that_is_never_answered_times_out_and_is_retried(cluster: Cluster, namespace: str, proxied) -> None:
    proxy, _ = proxied
    path = f"/apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachines/stalled"
    proxy.faults.stall[path] = 1  # the first apply of its KubeVirt VM hangs, connection open, no answer
    cluster.apply(vsvm("stalled"), namespace=namespace)
    wait_for(
        lambda: ready(cluster, namespace, "stalled"),
        REQUEST_TIMEOUT_SECONDS + 60,
        "a VM whose first write was never answered becomes Ready",
    )
    assert proxy.faults.stall[path] == 0 and proxy.faults.writes[path] >= 1, "the stall happened, then a retry"


def test_a_deletion_missed_while_the_watches_were_down_is_found_by_listing_again(
    cluster: Cluster, namespace: str, proxied
) -> None:
    """Watches go silent, the KubeVirt VM is deleted, the reopened watches are too old (410): kopf lists again.

    The listing no longer holds the KubeVirt VM or its VMI; nothing else will ever say they are
    gone, so only the relist repair lets the operator see it and build the VM again.
    """
    proxy, _ = proxied
    cluster.apply(vsvm("gap"), namespace=namespace)
    wait_for(lambda: ready(cluster, namespace, "gap"), 60, "gap Ready")
    first = cluster.get("virtualmachines.kubevirt.io", "gap", namespace)["metadata"]["uid"]
    proxy.mute(True)
    expired = ["/apis/kubevirt.io/v1/virtualmachines", "/apis/kubevirt.io/v1/virtualmachineinstances"]
    for path in expired:
        proxy.faults.expire[path] = 1
    cluster.kubectl("delete", "virtualmachines.kubevirt.io", "gap", "-n", namespace, "--wait=true")
    wait_for(lambda: cluster.get("vmi", "gap", namespace) is None, 30, "the VMI collected with its VM")

    wait_for(
        lambda: (kv := cluster.get("virtualmachines.kubevirt.io", "gap", namespace)) and kv["metadata"]["uid"] != first,
        INACTIVITY_SECONDS + 60,
        "the KubeVirt VM built again once the listing showed it gone",
    )
    assert all(proxy.faults.expire[path] == 0 for path in expired), "the reopened watches were expired (410)"
    wait_for(lambda: ready(cluster, namespace, "gap"), 60, "gap Ready again")
