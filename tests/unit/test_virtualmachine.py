"""The VirtualMachine's pure pieces: the KubeVirt VM it builds and the status it reports."""

from __future__ import annotations

import pytest
from virtstack.api.conditions import Condition, ConditionStatus
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus, VMState
from virtstack.builders.kubevirt_vm import build_kubevirt_vm
from virtstack.status.virtualmachine import compute_status

NOW = "2026-11-25T12:00:00Z"
LATER = "2026-11-25T12:05:00Z"


def spec(state: str = "Running") -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate(
        {
            "state": state,
            "resources": {"cpu": 2, "memory": "4Gi"},
            "source": {"template": {"image": "quay.io/containerdisks/fedora:41"}},
        }
    )


def kubevirt_vm(printable: str, strategy: str = "Always") -> dict:
    return {"spec": {"runStrategy": strategy}, "status": {"printableStatus": printable, "runStrategy": strategy}}


def running_vmi(node: str = "host-a", ip: str = "10.244.1.7") -> dict:
    return {
        "metadata": {"name": "vm"},
        "status": {"phase": "Running", "nodeName": node, "interfaces": [{"name": "default", "ipAddress": ip}]},
    }


def ready(status: VirtualMachineStatus) -> Condition:
    return next(c for c in status.conditions if c.type == "Ready")


def test_kubevirt_vm_is_owned_labelled_and_named_like_ours() -> None:
    built = build_kubevirt_vm("web", "team-a", "uid-1", spec())
    meta = built["metadata"]
    assert (meta["name"], meta["namespace"]) == ("web", "team-a")
    assert meta["labels"]["virtstack.io/vm"] == "web"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "virtstack.io/v1alpha1",
            "kind": "VirtualMachine",
            "name": "web",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    template = built["spec"]["template"]
    assert template["metadata"]["labels"] == {"virtstack.io/vm": "web"}, "the VMI carries the label too"
    domain = template["spec"]["domain"]
    assert domain["cpu"]["sockets"] == 2 and domain["memory"]["guest"] == "4Gi"
    disk_names = [d["name"] for d in domain["devices"]["disks"]]
    assert disk_names == [v["name"] for v in template["spec"]["volumes"]], "every disk has its volume"


@pytest.mark.parametrize(("state", "strategy"), [("Running", "Always"), ("Stopped", "Halted")])
def test_power_state_maps_to_run_strategy(state: str, strategy: str) -> None:
    assert build_kubevirt_vm("vm", "ns", "uid", spec(state))["spec"]["runStrategy"] == strategy


@pytest.mark.parametrize(
    ("wanted", "observed", "vmi", "state", "is_ready"),
    [
        ("Running", None, None, VMState.CREATING, False),
        ("Running", kubevirt_vm("Starting"), None, VMState.STARTING, False),
        ("Running", kubevirt_vm("ErrorUnschedulable"), None, VMState.STARTING, False),
        ("Running", kubevirt_vm("Running"), running_vmi(), VMState.RUNNING, True),
        ("Running", kubevirt_vm("Stopped"), None, VMState.STARTING, False),
        ("Running", kubevirt_vm("CrashLoopBackOff"), None, VMState.ERROR, False),
        ("Stopped", kubevirt_vm("Running", "Always"), running_vmi(), VMState.STOPPING, False),
        ("Stopped", kubevirt_vm("Stopped", "Halted"), None, VMState.STOPPED, True),
        ("Running", kubevirt_vm("Terminating"), None, VMState.DESTROYING, False),
    ],
)
def test_state_and_ready(wanted: str, observed: dict | None, vmi: dict | None, state: VMState, is_ready: bool) -> None:
    status = compute_status(4, spec(wanted), observed, vmi, VirtualMachineStatus(), NOW)
    assert status.state is state
    assert (ready(status).status is ConditionStatus.TRUE) is is_ready
    assert ready(status).observedGeneration == status.observedGeneration == 4


def test_ready_is_false_until_kubevirt_has_seen_the_new_run_strategy() -> None:
    stale = {"spec": {"runStrategy": "Halted"}, "status": {"printableStatus": "Stopped", "runStrategy": "Always"}}
    status = compute_status(2, spec("Stopped"), stale, None, VirtualMachineStatus(), NOW)
    assert ready(status).status is ConditionStatus.FALSE


def test_running_vm_reports_host_ip_and_scheduled() -> None:
    status = compute_status(
        1, spec(), kubevirt_vm("Running"), running_vmi("host-b", "10.244.2.9"), VirtualMachineStatus(), NOW
    )
    assert (status.host, status.ipAddresses) == ("host-b", ["10.244.2.9"])
    scheduled = next(c for c in status.conditions if c.type == "Scheduled")
    assert scheduled.status is ConditionStatus.TRUE and "host-b" in scheduled.message


def test_unschedulable_vmi_gives_scheduled_false_insufficient_capacity() -> None:
    vmi = {
        "status": {
            "phase": "Scheduling",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/GRID_K240Q.",
                }
            ],
        }
    }
    status = compute_status(1, spec(), kubevirt_vm("ErrorUnschedulable"), vmi, VirtualMachineStatus(), NOW)
    scheduled = next(c for c in status.conditions if c.type == "Scheduled")
    assert (scheduled.status, scheduled.reason) == (ConditionStatus.FALSE, "InsufficientCapacity")
    assert "Insufficient nvidia.com/GRID_K240Q" in scheduled.message


def test_transition_time_kept_while_status_unchanged_so_a_resync_writes_nothing() -> None:
    first = compute_status(1, spec(), kubevirt_vm("Running"), running_vmi(), VirtualMachineStatus(), NOW)
    second = compute_status(1, spec(), kubevirt_vm("Running"), running_vmi(), first, LATER)
    assert second == first
    stopped = compute_status(2, spec("Stopped"), kubevirt_vm("Stopped", "Halted"), None, first, LATER)
    assert ready(stopped).lastTransitionTime == NOW, "Ready stayed True: no transition"
    starting = compute_status(3, spec(), kubevirt_vm("Starting"), None, stopped, LATER)
    assert ready(starting).lastTransitionTime == LATER
