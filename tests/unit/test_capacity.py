"""The (N-1) capacity limit: which VMs may start, decided the same way by every reconcile."""

from __future__ import annotations

from types import SimpleNamespace

from virtstack.api.settings import Settings
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus
from virtstack.builders.kubevirt_vm import VMInputs, build_kubevirt_vm
from virtstack.controllers.capacity import CapacityGate
from virtstack.status.capacity import cluster_limit, holds_room, is_vm_host, plan_capacity
from virtstack.status.virtualmachine import Observed, compute_status, transition_event

HOST = {"ready": True, "unschedulable": False, "labels": {"kubevirt.io/schedulable": "true"}}
NOW = "2026-11-25T12:00:00Z"


def vm(created: str, state: str = "Running", deleting: bool = False) -> dict:
    meta: dict = {"creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "spec": {"state": state}}


def started(strategy: str = "Once") -> dict:
    return {"spec": {"runStrategy": strategy}}


def vmi(phase: str = "Running") -> dict:
    return {"metadata": {}, "status": {"phase": phase}}


def test_hosts_are_ready_uncordoned_kubevirt_nodes() -> None:
    assert is_vm_host(HOST)
    assert not is_vm_host({**HOST, "ready": False})
    assert not is_vm_host({**HOST, "unschedulable": True}), "a cordoned host takes no failed host's VMs"
    assert not is_vm_host({**HOST, "labels": {"kubevirt.io/schedulable": "false"}}), "virt-handler is gone"
    assert not is_vm_host({**HOST, "labels": {}}), "no virt-handler: not a VM host"


def test_limit_keeps_one_hosts_worth_free() -> None:
    assert cluster_limit(4, 50) == 150
    assert cluster_limit(1, 50) == 50, "one host has nowhere to fail over to: emptiness would protect nothing"
    assert cluster_limit(0, 50) == 0
    assert cluster_limit(4, 0) is None, "0: no limit"


def test_room_is_held_from_start_until_stopped_and_gone() -> None:
    assert holds_room(started("Once"), None), "let start, no VMI yet"
    assert holds_room(started("Always"), vmi("Failed")), "an HA VM KubeVirt restarts keeps its room"
    assert holds_room(started("Once"), vmi("Succeeded")), "a guest shut down: starting again is never refused"
    assert holds_room(started("Halted"), vmi("Running")), "stopping: still on its host"
    assert not holds_room(started("Halted"), vmi("Succeeded"))
    assert not holds_room(started("Halted"), None)
    assert not holds_room(None, None)


def test_oldest_waiting_vms_get_the_room_and_the_rest_wait_in_order() -> None:
    vms = {
        ("a", "old-running"): vm("2026-11-25T10:00:00Z"),
        ("b", "new"): vm("2026-11-25T12:00:02Z"),
        ("a", "older"): vm("2026-11-25T12:00:01Z"),
        ("a", "same-second-2"): vm("2026-11-25T12:00:03Z"),
        ("a", "same-second-1"): vm("2026-11-25T12:00:03Z"),
        ("a", "stopped"): vm("2026-11-25T09:00:00Z", state="Stopped"),
        ("a", "deleting"): vm("2026-11-25T09:00:00Z", deleting=True),
    }
    kubevirt_vms = {("a", "old-running"): started(), ("a", "stopped"): started("Halted")}
    vmis = {("a", "old-running"): vmi()}
    # 3 hosts x 1 per host: a limit of 2, one held.
    capacity = plan_capacity(vms, kubevirt_vms, vmis, [HOST] * 3, per_host=1)
    assert (capacity.hosts, capacity.limit, capacity.holding, capacity.room) == (3, 2, 1, 1)
    assert capacity.queue == (("a", "older"), ("b", "new"), ("a", "same-second-1"), ("a", "same-second-2"))
    assert capacity.admitted() == (("a", "older"),)
    assert not capacity.admits(("b", "new"))
    message = capacity.waiting_message()
    assert "1 VMs run or are starting" in message
    assert "the limit is 2 = (3 Ready hosts - 1) x maxVMsPerHost 1" in message
    assert "maxVMsPerHost" in message and "add hosts" in message


def test_a_vm_let_start_counts_before_the_index_shows_it_and_blocked_vms_hold_no_place() -> None:
    vms = {("a", "first"): vm("2026-11-25T12:00:01Z"), ("a", "second"): vm("2026-11-25T12:00:02Z")}
    capacity = plan_capacity(vms, {}, {}, [HOST] * 2, per_host=1, started=[("a", "first")])
    assert (capacity.holding, capacity.room, capacity.queue) == (1, 0, (("a", "second"),))
    capacity = plan_capacity(vms, {}, {}, [HOST] * 2, per_host=1, blocked=[("a", "first")])
    assert capacity.admitted() == (("a", "second"),), "a VM that cannot be built does not hold up the next"
    vanished = plan_capacity({("a", "second"): vms[("a", "second")]}, {}, {}, [HOST] * 2, 1, started=[("a", "first")])
    assert vanished.holding == 0, "a deleted VM's start no longer counts"


def test_running_vms_above_a_shrunk_limit_keep_running() -> None:
    vms = {(f"n{i}", "vm"): vm(f"2026-11-25T12:00:0{i}Z") for i in range(4)}
    kubevirt_vms = {key: started() for key in list(vms)[:3]}
    capacity = plan_capacity(vms, kubevirt_vms, {}, [HOST, {**HOST, "ready": False}], per_host=2)
    assert (capacity.limit, capacity.holding, capacity.room) == (2, 3, 0)
    assert "the limit is 2 = maxVMsPerHost 2 on 1 Ready hosts" in capacity.waiting_message()
    assert capacity.queue == (("n3", "vm"),)


def index(entries: dict) -> dict:
    """kopf's index shape: key -> a store of objects."""
    return {key: [value] for key, value in entries.items()}


def test_back_to_back_reconciles_cannot_both_take_the_last_place() -> None:
    """Neither VM's start is in the index yet when the other is decided: the gate's record counts it."""
    vms = {("a", "one"): vm("2026-11-25T12:00:01Z"), ("a", "two"): vm("2026-11-25T12:00:02Z")}
    indexes = SimpleNamespace(vms=index(vms), kubevirt_vms={}, vmis={}, nodes=index({"h1": HOST, "h2": HOST}))
    gate = CapacityGate(per_host=1)
    assert gate.wait_message(("a", "two"), True, None, None, indexes) is not None, "one is older"
    assert gate.wait_message(("a", "one"), True, None, None, indexes) is None
    assert gate.wait_message(("a", "two"), True, None, None, indexes) is not None, "one took the place"
    assert gate.wait_message(("a", "one"), True, None, None, indexes) is None, "a start is never taken back"
    assert gate.to_requeue(indexes) == [("a", "two")]
    assert gate.to_requeue(indexes) == [], "nothing changed since"
    indexes.vms = index({("a", "two"): vms[("a", "two")]})  # one is deleted
    gate.forget(("a", "one"))
    assert gate.to_requeue(indexes) == [("a", "two")]
    assert gate.wait_message(("a", "two"), True, None, None, indexes) is None


def test_no_limit_and_stopped_vms_are_never_gated() -> None:
    indexes = SimpleNamespace(vms=index({("a", "x"): vm(NOW)}), kubevirt_vms={}, vmis={}, nodes={})
    assert CapacityGate(per_host=0).wait_message(("a", "x"), True, None, None, indexes) is None
    assert CapacityGate(per_host=5).wait_message(("a", "x"), False, None, None, indexes) is None


def test_a_waiting_vm_is_built_halted_and_reports_capacity_limit() -> None:
    spec = VirtualMachineSpec.model_validate({"source": {"template": {"image": "x"}}})
    built = build_kubevirt_vm(VMInputs("vm", "ns", "uid", spec, Settings(), "i-1", wait_for_room=True))
    assert built["spec"]["runStrategy"] == "Halted"
    kubevirt_vm = {"spec": built["spec"], "status": {"printableStatus": "Stopped", "runStrategy": "Halted"}}
    observed = Observed(kubevirt_vm=kubevirt_vm, vmi=None, instance_name="i-1", capacity_wait="the limit is 3")
    status = compute_status(1, spec, observed, VirtualMachineStatus(), NOW)
    conditions = {c.type: c for c in status.conditions}
    assert (conditions["Scheduled"].status, conditions["Scheduled"].reason) == ("False", "CapacityLimit")
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "CapacityLimit")
    assert conditions["Scheduled"].message == "the limit is 3"
    assert status.state == "Starting"

    assert transition_event(VirtualMachineStatus(), status) == ("Warning", "CapacityLimit", "the limit is 3")
    assert transition_event(status, status) is None, "one Warning when it starts to wait, not one per reconcile"


def test_a_vm_halted_for_a_revert_keeps_its_room_and_starts_in_it_afterwards() -> None:
    vms = {("a", "reverted"): vm("2026-11-25T12:00:01Z"), ("a", "waiting"): vm("2026-11-25T12:00:02Z")}
    indexes = SimpleNamespace(
        vms=index(vms), kubevirt_vms=index({("a", "reverted"): started()}), vmis={}, nodes=index({"h": HOST})
    )
    gate = CapacityGate(per_host=1)  # one host: a limit of one, held by "reverted"
    assert gate.wait_message(("a", "waiting"), True, None, None, indexes) is not None
    kubevirt_vm = started()
    assert gate.wait_message(("a", "reverted"), True, kubevirt_vm, None, indexes, kept=True) is None
    indexes.kubevirt_vms = index({("a", "reverted"): started("Halted")})  # halted: no VMI, the index shows no room
    assert gate.wait_message(("a", "waiting"), True, None, None, indexes) is not None, "the room is kept"
    assert gate.wait_message(("a", "reverted"), True, started("Halted"), None, indexes, kept=True) is None
    assert gate.wait_message(("a", "reverted"), True, started("Halted"), None, indexes) is None, "starts again"
    assert gate.wait_message(("a", "waiting"), True, None, None, indexes) is not None
