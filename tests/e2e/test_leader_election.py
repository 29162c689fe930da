"""Two replicas with Lease-based leader election: only the holder writes; a dead or departing holder is replaced.

Each replica's requests carry its identity in the user agent ("virtstack/<version> (<POD_NAME>)"),
so the API server's audit log tells their writes apart.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from virtstack.leader import LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD
from virtstack.objects import condition_of
from virtstack_testbed.audit import writes
from virtstack_testbed.testing import Cluster, wait_for

from .conftest import Operator
from .test_walking_skeleton import vsvm

pytestmark = pytest.mark.usefixtures("virtstack_crds")
LEASE = "virtstack-leader"


def replica(cluster: Cluster, namespace: str, identity: str) -> Operator:
    env = {"VIRTSTACK_LEADER_ELECTION_LEASE": LEASE, "POD_NAME": identity, "POD_NAMESPACE": namespace}
    return Operator(cluster, env=env, args=(f"--namespace={namespace}",))


def holder(cluster: Cluster, namespace: str) -> str:
    lease = cluster.get("lease", LEASE, namespace) or {}
    return (lease.get("spec") or {}).get("holderIdentity") or ""


def writes_of(cluster: Cluster, identity: str) -> list:
    return [w for w in writes(cluster.plane) if w.user_agent.endswith(f"({identity})")]


def ready_in_state(cluster: Cluster, namespace: str, name: str, state: str):
    def check() -> bool:
        vm = cluster.get("vsvm", name, namespace) or {}
        status = vm.get("status") or {}
        ready = condition_of(vm, "Ready") or {}
        current = status.get("observedGeneration") == vm.get("metadata", {}).get("generation")
        return status.get("state") == state and ready.get("status") == "True" and current

    return check


def hand_over(cluster: Cluster, namespace: str, successor: str, limit: float) -> float:
    """Seconds from now until `successor` holds the Lease."""
    started = time.monotonic()
    wait_for(lambda: holder(cluster, namespace) == successor, limit, f"{successor} holds the Lease", interval=0.1)
    return time.monotonic() - started


def test_only_the_leader_writes_and_a_successor_takes_over(cluster: Cluster, namespace: str) -> None:
    if cluster.plane is None:
        pytest.skip("counts writes per replica from the testbed's audit log")
    a, b = replica(cluster, namespace, "replica-a"), replica(cluster, namespace, "replica-b")
    a.start()
    wait_for(lambda: holder(cluster, namespace) == "replica-a", 30, "replica-a elected")
    b.start()
    try:
        cluster.apply(vsvm("elected", state="Running"), namespace=namespace)
        wait_for(ready_in_state(cluster, namespace, "elected", "Running"), 60, "elected Running and Ready")
        time.sleep(2 * RETRY_PERIOD)
        assert holder(cluster, namespace) == "replica-a", "the standby never takes a valid Lease"
        assert writes_of(cluster, "replica-b") == [], "the standby wrote nothing, not even to the Lease"
        leader_writes = writes_of(cluster, "replica-a")
        assert {(w.resource, w.name) for w in leader_writes if w.resource == "leases"} == {("leases", LEASE)}
        foreign = [
            w
            for w in writes(cluster.plane, "virtstack/")
            if w.namespace == namespace and "(replica-" not in w.user_agent
        ]
        if not foreign:  # another operator (the session's, cluster-wide) would share the work
            vm_writes = {(w.resource, w.subresource) for w in leader_writes if w.name == "elected"}
            assert {("virtualmachines", ""), ("virtualmachines", "status")} <= vm_writes, vm_writes

        # The leader dies without a word (SIGKILL): the standby waits out the Lease it last saw change.
        a.kill()
        crash_handover = hand_over(cluster, namespace, "replica-b", LEASE_DURATION + 4 * RETRY_PERIOD)
        print(f"hand-over after SIGKILL of the leader: {crash_handover:.1f}s")
        assert crash_handover <= LEASE_DURATION + 2 * RETRY_PERIOD + 1
        cluster.apply(vsvm("elected", state="Stopped"), namespace=namespace)
        wait_for(ready_in_state(cluster, namespace, "elected", "Stopped"), 60, "elected Stopped by the new leader")
        assert any(w.name == "elected" for w in writes_of(cluster, "replica-b")) or foreign, "the new leader reconciles"
        lease = cluster.get("lease", LEASE, namespace)
        assert lease["spec"]["leaseTransitions"] == 1 and lease["spec"]["leaseDurationSeconds"] == LEASE_DURATION

        # A clean shutdown (SIGTERM, as on a rolling update) releases the Lease: the standby takes it at once.
        before = len(writes_of(cluster, "replica-a"))
        a = replica(cluster, namespace, "replica-a")
        a.start()
        time.sleep(2 * RETRY_PERIOD)
        assert len(writes_of(cluster, "replica-a")) == before, "the restarted replica waits as a standby"
        b.process.send_signal(signal.SIGTERM)
        clean_handover = hand_over(cluster, namespace, "replica-a", 2 * RETRY_PERIOD + 5)
        print(f"hand-over after SIGTERM of the leader: {clean_handover:.1f}s")
        assert clean_handover <= RETRY_PERIOD + 2
        assert b.process.wait(timeout=15) == 0, "a clean stop exits 0"
    finally:
        for operator in (a, b):
            if operator.process and operator.process.poll() is None:
                operator.stop()


def test_a_leader_that_cannot_renew_stops_writing_and_exits(cluster: Cluster, namespace: str) -> None:
    """Someone else holds the Lease now (as after a network partition): the old holder gives up at its deadline."""
    if cluster.plane is None:
        pytest.skip("counts writes per replica from the testbed's audit log")
    a = replica(cluster, namespace, "replica-a")
    a.start()
    try:
        wait_for(lambda: holder(cluster, namespace) == "replica-a", 30, "replica-a elected")
        taken = {"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 3600}}
        cluster.kubectl("patch", "lease", LEASE, "-n", namespace, "--type=merge", "-p", json.dumps(taken))
        started = time.monotonic()
        code = a.process.wait(timeout=RENEW_DEADLINE + 3 * RETRY_PERIOD + 15)
        gave_up = time.monotonic() - started
        print(f"the displaced leader exited after {gave_up:.1f}s with code {code}")
        assert code == 1, "leadership lost: non-zero, so Kubernetes restarts it as a candidate"
        assert gave_up <= RENEW_DEADLINE + 2 * RETRY_PERIOD + 10  # + kopf's shutdown
        assert holder(cluster, namespace) == "intruder", "it never wrote the Lease back"
        log = a.log_path.read_text()
        lines = [json.loads(line) for line in log.splitlines() if line.strip()]
        assert any("lost the Lease" in line["message"] for line in lines), log[-2000:]
    finally:
        if a.process.poll() is None:
            a.stop()
