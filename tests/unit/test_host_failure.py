"""CloudStack's host-down rule and what the VM reports while its host is down."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from virtstack.api.durations import parse_duration
from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus, VMState
from virtstack.status.hosts import host_health
from virtstack.status.virtualmachine import Observed, compute_status

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def node(ready: bool, since: str | None = None) -> dict:
    return {"ready": ready, "notReadySince": since}


@pytest.mark.parametrize(
    ("entry", "down", "recheck"),
    [
        (node(True), False, None),
        (node(False, "2026-11-25T11:59:00Z"), False, 120.0),  # 60 s of 180: check again in 120 s
        (node(False, "2026-11-25T11:57:00Z"), True, None),
        (None, True, None),  # the Node is gone
    ],
)
def test_host_is_down_after_the_setting(entry: dict | None, down: bool, recheck: float | None) -> None:
    health = host_health(entry, NOW, 180)
    assert (health.down, health.recheck_in) == (down, recheck)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("3m", 180), ("1h30m", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["3", "3 m", "m", "3d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("ha", "says"), [(True, "restarting it on another host"), (False, "it stays down")])
def test_vm_on_a_down_host_is_down_and_says_what_happens_next(ha: bool, says: str) -> None:
    spec = VirtualMachineSpec.model_validate({"highAvailability": ha, "source": {"template": {"image": "x"}}})
    vmi = {"metadata": {}, "status": {"phase": "Running", "nodeName": "host-b"}}
    kubevirt_vm = {"spec": {"runStrategy": "Always"}, "status": {"printableStatus": "Running"}}
    observed = Observed(kubevirt_vm=kubevirt_vm, vmi=vmi, instance_name="i-1", host_down_for=200.0)
    status = compute_status(1, spec, observed, VirtualMachineStatus(), "2026-11-25T12:00:00Z")
    ready = status.conditions[0]
    assert status.state is VMState.DOWN and status.host == "host-b"
    assert ready.reason == "HostDown" and "host-b has not reported for 200 s" in ready.message and says in ready.message
