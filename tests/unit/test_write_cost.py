"""What keeps a VM's create cheap in writes: in-progress statuses are held briefly, arrivals are not."""

from __future__ import annotations

from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus
from virtstack.controllers.settling import ProgressHold
from virtstack.status.virtualmachine import Observed, blocked_status, compute_status, in_progress

NOW = "2026-11-25T12:00:00Z"
SPEC = VirtualMachineSpec.model_validate(
    {"resources": {"cpu": 1, "memory": "1Gi"}, "source": {"template": {"image": "quay.io/containerdisks/cirros"}}}
)


def status_for(printable: str | None, vmi: dict | None = None) -> VirtualMachineStatus:
    kubevirt_vm = (
        None if printable is None else {"spec": {"runStrategy": "Once"}, "status": {"printableStatus": printable}}
    )
    observed = Observed(kubevirt_vm=kubevirt_vm, vmi=vmi, instance_name="i-1", vm_name="web")
    return compute_status(1, SPEC, observed, VirtualMachineStatus(), NOW)


def test_only_statuses_that_say_on_the_way_are_in_progress() -> None:
    assert in_progress(status_for(None))  # Creating
    assert in_progress(status_for("Starting"))
    assert in_progress(status_for("Provisioning"))
    running = {"metadata": {}, "status": {"phase": "Running", "nodeName": "host-a"}}
    assert not in_progress(status_for("Running", running)), "an arrival is written at once"
    assert not in_progress(status_for("DataVolumeError")), "a failing import is a problem to show, not progress"
    assert not in_progress(blocked_status(1, "UserDataInvalid", "too big", VirtualMachineStatus(), "i-1", NOW))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_written_once_it_lasts_then_at_most_once_per_hold() -> None:
    clock = Clock()
    hold = ProgressHold(5.0, clock)
    assert hold.wait("vm", holdable=True) == 5.0
    clock.now += 2
    assert hold.wait("vm", holdable=True) == 3.0, "the clock runs from the first in-progress status"
    clock.now += 3
    assert hold.wait("vm", holdable=True) is None, "lasted the hold: written"
    clock.now += 1
    assert hold.wait("vm", holdable=True) == 4.0, "more progress waits a hold from that write"
    clock.now += 4
    assert hold.wait("vm", holdable=True) is None


def test_an_arrival_is_written_at_once_and_restarts_the_clock() -> None:
    clock = Clock()
    hold = ProgressHold(5.0, clock)
    assert hold.wait("vm", holdable=True) == 5.0
    clock.now += 1
    assert hold.wait("vm", holdable=False) is None
    clock.now += 10
    assert hold.wait("vm", holdable=True) == 5.0, "a new run of progress is held again"
    hold.forget("vm")
    assert hold.wait("other", holdable=False) is None
