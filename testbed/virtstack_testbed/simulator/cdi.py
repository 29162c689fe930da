"""A minimal stand-in for CDI's DataVolume controller (pure).

Follows kubevirt/containerized-data-importer pkg/controller/datavolume/{controller-base.go,
conditions.go}: phases, `progress` ("N/A", then "100.0%" on success) and the Bound / Ready /
Running conditions. Sources the simulator completes at once: `blank` and `pvc` (a clone is not
simulated byte by byte). Any other source (`http`, `registry`, `s3`, ... and `sourceRef`) stays
`Pending` with progress "N/A": the VM that waits for it shows `Provisioning`.
"""

from __future__ import annotations

from .clock import now

INSTANT_SOURCES = ("blank", "pvc")


def source_kind(dv: dict) -> str | None:
    spec = dv.get("spec") or {}
    if spec.get("sourceRef"):
        return "sourceRef"
    return next(iter(spec.get("source") or {}), None)


def dv_status(dv: dict) -> dict:
    """The DataVolume's status as CDI would report it."""
    previous = dv.get("status") or {}
    name = dv["metadata"]["name"]
    if source_kind(dv) in INSTANT_SOURCES:
        status = {
            "phase": "Succeeded",
            "progress": "100.0%",
            "claimName": name,
            "conditions": [
                {"type": "Bound", "status": "True", "reason": "Bound", "message": f"PVC {name} Bound"},
                {"type": "Ready", "status": "True"},
                {"type": "Running", "status": "False", "reason": "Completed"},
            ],
        }
    else:
        status = {
            "phase": "Pending",
            "progress": "N/A",
            "claimName": name,
            "conditions": [
                {"type": "Bound", "status": "False", "reason": "Pending", "message": f"PVC {name} Pending"},
                {"type": "Ready", "status": "False"},
                {"type": "Running", "status": "False"},
            ],
        }
    before = {c["type"]: c for c in previous.get("conditions", [])}
    stamped = []
    for condition in status["conditions"]:
        old = before.get(condition["type"])
        same = old is not None and {k: old.get(k) for k in condition} == condition
        stamp = old.get("lastTransitionTime") if same else now()
        heartbeat = old.get("lastHeartbeatTime") if same else stamp
        stamped.append({**condition, "lastTransitionTime": stamp, "lastHeartbeatTime": heartbeat})
    status["conditions"] = stamped
    return status
