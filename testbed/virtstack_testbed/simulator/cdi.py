"""CDI's DataVolume controller and importer (pure decisions).

Follows kubevirt/containerized-data-importer pkg/controller/datavolume/{controller-base.go,
import-controller.go,conditions.go} and pkg/controller/import-controller.go: the PVC of the
DataVolume's name, phases Pending -> ImportScheduled -> ImportInProgress -> Succeeded, `progress`
("N/A", then "%.2f%%" from bytes read, exactly "100.0%" on success), the Bound / Ready / Running
conditions, and a failing importer that restarts (`restartCount` climbs, `Running=False` with
reason `Error`) instead of failing the DataVolume. cmd/cdi-importer and pkg/importer/
http-datasource.go: an `http` source is really fetched (controllers/cdi_controller.py), its
progress is the share of Content-Length read. `blank`, `pvc` and `sourceRef` (a DataSource whose
source is a PVC or snapshot) complete once the PVC is bound; other sources stay Pending.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import now

INSTANT_SOURCES = ("blank", "pvc")
DEFAULT_SIZE = "1Gi"
LABEL_SIMULATED = "virtstack.io/testbed-simulated"


@dataclass
class ImportProgress:
    """What the (simulated) importer pod has done so far, kept in the simulator's memory."""

    bytes_read: int = 0
    total: int | None = None  # Content-Length, when the server sent one
    running: bool = False  # connected and reading
    done: bool = False
    error: str | None = None  # the last attempt's failure
    restarts: int = 0


def source_kind(dv: dict) -> str | None:
    spec = dv.get("spec") or {}
    if spec.get("sourceRef"):
        return "sourceRef"
    return next(iter(spec.get("source") or {}), None)


def storage_spec(dv: dict) -> dict:
    spec = dv.get("spec") or {}
    return spec.get("pvc") or spec.get("storage") or {}


def pvc_for(dv: dict) -> dict:
    """The PVC CDI creates for a DataVolume: same name, owned by it, sized as asked."""
    storage = storage_spec(dv)
    size = ((storage.get("resources") or {}).get("requests") or {}).get("storage", DEFAULT_SIZE)
    spec: dict = {
        "accessModes": storage.get("accessModes") or ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
        "volumeMode": storage.get("volumeMode") or "Filesystem",
    }
    if storage.get("storageClassName"):
        spec["storageClassName"] = storage["storageClassName"]
    meta = dv["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {"app": "containerized-data-importer", LABEL_SIMULATED: "true"},
            "ownerReferences": [
                {
                    "apiVersion": "cdi.kubevirt.io/v1beta1",
                    "kind": "DataVolume",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def pv_for(pvc: dict) -> dict:
    """A volume for the claim, pre-bound through claimRef (the testbed has no provisioner); the
    kube-controller-manager's PV controller then binds the pair."""
    spec = pvc["spec"]
    meta = pvc["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "labels": {LABEL_SIMULATED: "true"}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec["accessModes"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName", ""),
            "hostPath": {"path": f"/var/lib/virtstack-testbed/{meta['namespace']}/{meta['name']}"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }


def format_progress(progress: ImportProgress | None) -> str:
    """CDI's progress: "N/A" until the size is known, then "%.2f%%"; "100.0%" only on success."""
    if progress is None or progress.done:
        return "100.0%" if progress is not None else "N/A"
    if not progress.total:
        return "N/A"
    return f"{min(progress.bytes_read / progress.total, 0.9999) * 100:.2f}%"


def import_backoff(restarts: int, base: float = 10.0, cap: float = 300.0) -> float:
    """The importer pod's restart back-off (the kubelet's CrashLoopBackOff: 10 s doubling, cap 5 min)."""
    return min(base * 2 ** max(restarts - 1, 0), cap)


def source_ready(dv: dict, datasource: dict | None) -> bool | None:
    """Whether the DataVolume completes without an import: True for blank / pvc / a DataSource
    with a PVC or snapshot; None when an import is needed (http); False when it cannot proceed."""
    kind = source_kind(dv)
    if kind in INSTANT_SOURCES:
        return True
    if kind == "sourceRef":
        source = ((datasource or {}).get("spec") or {}).get("source") or {}
        return bool(source.get("pvc") or source.get("snapshot"))
    if kind == "http":
        return None
    return False


def _conditions(bound: dict, ready: dict, running: dict, previous: dict) -> list[dict]:
    before = {c["type"]: c for c in previous.get("conditions", [])}
    stamped = []
    for condition in (
        {"type": "Bound", **bound},
        {"type": "Ready", **ready},
        {"type": "Running", **running},
    ):
        old = before.get(condition["type"])
        same = old is not None and all(old.get(k) == v for k, v in condition.items())
        stamp = old.get("lastTransitionTime") if same else now()
        heartbeat = old.get("lastHeartbeatTime") if same else stamp
        stamped.append({**condition, "lastTransitionTime": stamp, "lastHeartbeatTime": heartbeat})
    return stamped


def dv_status(dv: dict, pvc: dict | None, progress: ImportProgress | None, datasource: dict | None = None) -> dict:
    """The DataVolume's status as CDI reports it, from its PVC and its importer's progress."""
    previous = dv.get("status") or {}
    name = dv["metadata"]["name"]
    if previous.get("phase") in ("Succeeded", "Failed"):
        return previous
    bound = (pvc or {}).get("status", {}).get("phase") == "Bound"
    bound_condition = (
        {"status": "True", "reason": "Bound", "message": f"PVC {name} Bound"}
        if bound
        else {"status": "False", "reason": "Pending" if pvc else "NotFound", "message": f"PVC {name} Pending"}
    )
    status: dict = {"claimName": name, "progress": "N/A"}
    if previous.get("restartCount") or (progress and progress.restarts):
        status["restartCount"] = max(previous.get("restartCount", 0), progress.restarts if progress else 0)
    ready = source_ready(dv, datasource)
    if not bound or ready is False:
        status["phase"] = "Pending"
        status["conditions"] = _conditions(bound_condition, {"status": "False"}, {"status": "False"}, previous)
        return status
    if ready or (progress is not None and progress.done):
        status.update({"phase": "Succeeded", "progress": "100.0%"})
        status["conditions"] = _conditions(
            bound_condition, {"status": "True"}, {"status": "False", "reason": "Completed"}, previous
        )
        return status
    status["progress"] = format_progress(progress)
    transfer = {"status": "False", "reason": "TransferRunning"}
    if progress is None or (not progress.running and progress.error is None):
        status["phase"] = "ImportScheduled"
        running = {"status": "False", "reason": "Pending"}
    elif progress.error is not None and not progress.running:
        status["phase"] = "ImportInProgress" if progress.restarts else "ImportScheduled"
        running = {"status": "False", "reason": "Error", "message": progress.error}
    else:
        status["phase"] = "ImportInProgress"
        running = {"status": "True", "reason": "Pod is running"}
    status["conditions"] = _conditions(bound_condition, transfer, running, previous)
    return status
