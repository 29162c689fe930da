"""The (N-1) capacity limit on the real control plane: beyond it VMs wait, and start as room frees."""

from __future__ import annotations

import time

from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

from .test_vm_lifecycle import status_of, vm_with, wait_state

OWNED = "virtstack.io/vm"


def others_gone(cluster: Cluster, namespace: str) -> bool:
    """The limit counts every namespace: earlier tests' VMs (deleted asynchronously with their namespaces)."""
    return not [
        obj
        for kind in ("virtualmachines.kubevirt.io", "virtualmachineinstances.kubevirt.io")
        for obj in cluster.list(kind, selector=OWNED)
        if obj["metadata"]["namespace"] != namespace
    ]


def waiting_for_room(cluster: Cluster, namespace: str, name: str) -> dict | None:
    scheduled = condition_of(cluster.get("vsvm", name, namespace), "Scheduled")
    return scheduled if scheduled and scheduled["reason"] == "CapacityLimit" else None


def vmi_names(cluster: Cluster, namespace: str) -> set[str]:
    return {vmi["metadata"]["name"] for vmi in cluster.list("virtualmachineinstances.kubevirt.io", namespace)}


def test_beyond_n_minus_one_hosts_worth_vms_wait_and_start_as_room_frees(
    cluster: Cluster, namespace: str, operator
) -> None:
    wait_for(lambda: others_gone(cluster, namespace), 180, "earlier tests' VMs gone")
    hosts = sorted(cluster.plane.node_names())
    assert len(hosts) == 4
    names = [f"cap-{i}" for i in range(5)]
    with operator.settings(maxVMsPerHost=1):  # (4 - 1) x 1: three VMs
        # All at once: the operator reconciles them concurrently, and still lets exactly three start.
        cluster.apply(*[vm_with(name) for name in names], namespace=namespace)
        running = names[:3]  # the oldest (same second: by name)
        for name in running:
            wait_state(cluster, namespace, name, "Running", timeout=90)
        for name in names[3:]:
            waiting = wait_for(lambda n=name: waiting_for_room(cluster, namespace, n), 60, f"{name} CapacityLimit")
            assert waiting["status"] == "False"
            assert "the limit is 3 = (4 Ready hosts - 1) x maxVMsPerHost 1" in waiting["message"]
            assert "raise the operator setting maxVMsPerHost" in waiting["message"]
            ready = condition_of(cluster.get("vsvm", name, namespace), "Ready")
            assert (ready["status"], ready["reason"]) == ("False", "CapacityLimit")
            assert cluster.get("virtualmachines.kubevirt.io", name, namespace)["spec"]["runStrategy"] == "Halted"
        time.sleep(3)
        assert vmi_names(cluster, namespace) == set(running), "no overshoot, not even for a moment later"
        warned = [
            e["regarding"]["name"]
            for e in cluster.list("events.events.k8s.io", namespace)
            if e["reason"] == "CapacityLimit" and e["type"] == "Warning"
        ]
        assert sorted(warned) == names[3:], "one Warning per waiting VM"

        # A host leaves (cordoned): the limit drops to two, and the three running VMs keep running.
        cluster.kubectl("cordon", hosts[0])
        try:
            wait_for(
                lambda: (
                    "the limit is 2 = (3 Ready hosts"
                    in (waiting_for_room(cluster, namespace, "cap-3") or {}).get("message", "")
                ),
                30,
                "the lower limit reported",
            )
            cluster.kubectl("delete", "vsvm", "cap-0", "-n", namespace)
            wait_for(lambda: "cap-0" not in vmi_names(cluster, namespace), 60, "cap-0's VMI gone")
            time.sleep(3)
            assert vmi_names(cluster, namespace) == {"cap-1", "cap-2"}, "two run: the limit of two is reached"
            assert all(status_of(cluster, namespace, n)["state"] == "Running" for n in ("cap-1", "cap-2"))
        finally:
            cluster.kubectl("uncordon", hosts[0])
        # The host is back: room for one more, the oldest waiting VM.
        wait_state(cluster, namespace, "cap-3", "Running", timeout=60)
        assert condition_of(cluster.get("vsvm", "cap-3", namespace), "Scheduled")["status"] == "True"
        assert waiting_for_room(cluster, namespace, "cap-4") is not None

        # Another VM stops through its spec: its room goes to the last one.
        cluster.apply(vm_with("cap-1", state="Stopped"), namespace=namespace)
        wait_state(cluster, namespace, "cap-4", "Running", timeout=60)
        assert vmi_names(cluster, namespace) == {"cap-2", "cap-3", "cap-4"}
