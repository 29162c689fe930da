"""A live resize's outcome as the VM reports it: applied, on its way, or refused for want of a host."""

from __future__ import annotations

from virtstack.api.virtualmachine import VirtualMachineSpec
from virtstack.builders.quantity import bytes_of
from virtstack.status.resize import resize_condition

NOW = "2026-11-25T12:00:00Z"


def spec(cpu: int = 4, memory: str = "8Gi", dynamic: bool = True) -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate(
        {"source": {"template": {"image": "x"}}, "resources": {"cpu": cpu, "memory": memory}, "dynamicScaling": dynamic}
    )


def vmi(sockets: int = 2, memory: str = "4Gi", phase: str = "Running") -> dict:
    status = {
        "phase": phase,
        "nodeName": "host-a",
        "currentCPUTopology": {"sockets": sockets, "cores": 1, "threads": 1},
        "memory": {"guestAtBoot": "4Gi", "guestCurrent": memory},
    }
    return {"metadata": {"name": "vm"}, "status": status}


def migration(phase: str, created: str, reason: str = "TargetPodUnschedulable") -> dict:
    failure = {"type": "Failure", "status": "True", "reason": reason, "message": "0/4 nodes are available"}
    status = {"phase": phase, "conditions": [failure] if phase == "Failed" else []}
    return {"metadata": {"creationTimestamp": created}, "status": status}


def test_applied_when_the_guest_has_the_spec_size_written_either_way() -> None:
    condition = resize_condition(spec(4, "8Gi"), vmi(4, "8192Mi"), [], 1, NOW)
    assert (condition.status, condition.reason) == ("True", "Applied")
    assert condition.message == "the guest runs with 4 vCPUs and 8Gi"


def test_in_progress_while_kubevirt_hotplugs() -> None:
    condition = resize_condition(spec(), vmi(), [migration("Running", "2026-11-25T11:59:00Z")], 1, NOW)
    assert (condition.status, condition.reason) == ("False", "InProgress")
    assert "the guest has 2 vCPUs and 4Gi" in condition.message


def test_a_resize_no_host_can_give_keeps_the_vm_as_it_was_and_says_why() -> None:
    migrations = [migration("Succeeded", "2026-11-25T11:00:00Z"), migration("Failed", "2026-11-25T11:59:00Z")]
    condition = resize_condition(spec(), vmi(), migrations, 1, NOW)
    assert (condition.status, condition.reason) == ("False", "InsufficientCapacity")
    assert "no host could take the VM with 4 vCPUs and 8Gi (0/4 nodes are available)" in condition.message
    assert "keeps running as it was, with 2 vCPUs and 4Gi on host-a" in condition.message
    failed_otherwise = [migration("Failed", "2026-11-25T11:59:00Z", reason="MigrationFailed")]
    assert resize_condition(spec(), vmi(), failed_otherwise, 1, NOW).reason == "MigrationFailed"
    newer_attempt = [*migrations, migration("Scheduling", "2026-11-25T11:59:30Z")]
    assert resize_condition(spec(), vmi(), newer_attempt, 1, NOW).reason == "InProgress"


def test_only_running_dynamic_scaling_vms_report_it() -> None:
    assert resize_condition(spec(dynamic=False), vmi(), [], 1, NOW) is None
    assert resize_condition(spec(), vmi(phase="Scheduled"), [], 1, NOW) is None
    assert resize_condition(spec(), None, [], 1, NOW) is None


def test_bytes_of() -> None:
    assert bytes_of("4Gi") == bytes_of("4096Mi") == 4 * 2**30
    assert (bytes_of("1G"), bytes_of("512")) == (10**9, 512)
