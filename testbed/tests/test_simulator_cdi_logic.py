"""CDI's DataVolume decisions (simulator/cdi.py)."""

from __future__ import annotations

import pytest
from virtstack_testbed.simulator.cdi import (
    ImportProgress,
    dv_status,
    format_progress,
    import_backoff,
    pv_for,
    pvc_for,
)


def dv(source: dict, **spec) -> dict:
    return {
        "metadata": {"name": "disk", "namespace": "ns", "uid": "dv-uid"},
        "spec": {"source": source, **spec},
    }


BOUND = {"metadata": {"uid": "pvc-uid"}, "status": {"phase": "Bound"}}
PENDING = {"metadata": {"uid": "pvc-uid"}, "status": {"phase": "Pending"}}
HTTP = {"http": {"url": "http://127.0.0.1/x"}}


def conditions(status: dict) -> dict:
    return {c["type"]: (c["status"], c.get("reason")) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("source", "pvc", "progress", "phase", "shown"),
    [
        ({"blank": {}}, None, None, "Pending", "N/A"),
        ({"blank": {}}, PENDING, None, "Pending", "N/A"),
        ({"blank": {}}, BOUND, None, "Succeeded", "100.0%"),
        (HTTP, BOUND, None, "ImportScheduled", "N/A"),
        (HTTP, BOUND, ImportProgress(bytes_read=45, total=100, running=True), "ImportInProgress", "45.00%"),
        (HTTP, BOUND, ImportProgress(error="boom", restarts=2), "ImportInProgress", "N/A"),
        (HTTP, BOUND, ImportProgress(bytes_read=100, total=100, done=True), "Succeeded", "100.0%"),
        ({"registry": {"url": "docker://x"}}, BOUND, None, "Pending", "N/A"),
    ],
)
def test_phases_and_progress(source: dict, pvc: dict | None, progress, phase: str, shown: str) -> None:
    status = dv_status(dv(source), pvc, progress)
    assert (status["phase"], status["progress"]) == (phase, shown)


def test_a_failing_import_retries_with_a_climbing_restart_count_and_never_fails() -> None:
    status = dv_status(dv(HTTP), BOUND, ImportProgress(error="Unable to connect: 404", restarts=3))
    assert status["restartCount"] == 3 and status["phase"] == "ImportInProgress"
    assert conditions(status)["Running"] == ("False", "Error")
    assert conditions(status)["Ready"] == ("False", "TransferRunning")
    assert [import_backoff(n) for n in (1, 2, 3, 6, 9)] == [10, 20, 40, 300, 300]


def test_progress_format_is_cdis() -> None:
    assert format_progress(None) == "N/A"
    assert format_progress(ImportProgress(bytes_read=1, total=3)) == "33.33%"
    assert format_progress(ImportProgress(bytes_read=3, total=3)) == "99.99%", "100.0% only once done"
    assert format_progress(ImportProgress(done=True)) == "100.0%"


def test_pvc_and_pv() -> None:
    volume = dv(
        {"blank": {}}, storage={"resources": {"requests": {"storage": "5Gi"}}, "accessModes": ["ReadWriteMany"]}
    )
    claim = pvc_for(volume)
    assert claim["metadata"]["name"] == "disk" and claim["metadata"]["ownerReferences"][0]["uid"] == "dv-uid"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    claim["metadata"]["uid"] = "pvc-uid"
    pv = pv_for(claim)
    assert pv["spec"]["claimRef"]["uid"] == "pvc-uid" and pv["spec"]["capacity"]["storage"] == "5Gi"
    assert pvc_for(dv({"blank": {}}))["spec"]["resources"]["requests"]["storage"] == "1Gi"
