"""Live migration: migratability, the checks KubeVirt's webhook makes, and the VMIM lifecycle (pure).

Follows kubevirt/kubevirt pkg/virt-controller/watch/migration/migration.go (phases, the target
launcher pod with anti-affinity to the source node and `addedNodeSelector`, the handoff, the
unschedulable-target timeout), pkg/virt-handler/migration-target.go and vm.go (migrationState
timestamps, `completed`, the nodeName switch), pkg/virt-api/webhooks/validating-webhook/admitters/
migration-create-admitter.go (refusals) and pkg/virt-controller/watch/vmi/lifecycle.go plus
pkg/network/migration (the LiveMigratable condition).

Test hooks (annotations on the VMI): `simulator.virtstack.io/migration: fail` makes the migration
fail once running (the VMI stays on its source); `simulator.virtstack.io/migration-seconds: "N"`
keeps it running N seconds (so `Migrating` can be observed).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from virtstack.objects import condition_of

from .clock import now
from .hotplug import applied_status
from .launcher import LABEL_CREATED_BY, launcher_pod
from .node import parse_time

LABEL_MIGRATION_JOB = "kubevirt.io/migrationJobUID"
LABEL_MIGRATION_TARGET_NODE = "kubevirt.io/migrationTargetNodeName"
LABEL_VMI_NAME = "kubevirt.io/vmi-name"
LABEL_NODE_NAME = "kubevirt.io/nodeName"
FAIL_ANNOTATION = "simulator.virtstack.io/migration"
SECONDS_ANNOTATION = "simulator.virtstack.io/migration-seconds"
FINAL = ("Succeeded", "Failed")
# migration.go defaultUnschedulablePendingTimeoutSeconds: a target pod unschedulable this long fails it.
DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS = 300.0
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def live_migratable(vmi: dict, shared_claims: frozenset[str] = frozenset()) -> dict:
    """The VMI's LiveMigratable condition (without times). `shared_claims`: DataVolume/PVC names known
    to be ReadWriteMany; any other PVC blocks migration, as an RWO claim does in KubeVirt."""
    spec = vmi.get("spec") or {}
    devices = (spec.get("domain") or {}).get("devices") or {}
    if devices.get("gpus") or devices.get("hostDevices"):
        return _not("HostDeviceNotLiveMigratable", "VMI uses a PCI host devices")
    for volume in spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName") or (volume.get("dataVolume") or {}).get(
            "name"
        )
        if claim and claim not in shared_claims:
            return _not(
                "DisksNotLiveMigratable",
                f"cannot migrate VMI: PVC {claim} is not shared, live migration requires that all PVCs must be "
                "shared (using ReadWriteMany access mode)",
            )
    pod_networks = {n["name"] for n in spec.get("networks") or [] if "pod" in n}
    for interface in devices.get("interfaces") or []:
        if interface["name"] in pod_networks and "bridge" in interface:
            return _not(
                "InterfaceNotLiveMigratable",
                "cannot migrate VMI which does not use masquerade, bridge with "
                "kubevirt.io/allow-pod-bridge-network-live-migration VM annotation or a migratable plugin to "
                "connect to the pod network",
            )
    return {"type": "LiveMigratable", "status": "True"}


def _not(reason: str, message: str) -> dict:
    return {"type": "LiveMigratable", "status": "False", "reason": reason, "message": message}


def refusal(vmim: dict, vmi: dict | None, migrations: list[dict]) -> tuple[str, str] | None:
    """migration-create-admitter.go: why KubeVirt would refuse this migration, as (reason, message)."""
    namespace, name = vmim["metadata"]["namespace"], vmim["spec"].get("vmiName", "")
    if vmi is None:
        return "VMINotFound", f'the VMI "{namespace}/{name}" does not exist'
    phase = (vmi.get("status") or {}).get("phase")
    if phase in FINAL:
        return "VMIFinal", "Cannot migrate VMI in finalized state."
    if phase != "Running":
        return "VMINotRunning", "Cannot migrate VMI which is not running"
    migratable = condition_of(vmi, "LiveMigratable")
    if migratable is not None and migratable["status"] == "False":
        reason = migratable.get("reason", "")
        return reason, f"Cannot migrate VMI, Reason: {reason}, Message: {migratable.get('message', '')}"
    for other in migrations:
        if (
            other["metadata"]["uid"] != vmim["metadata"]["uid"]
            and other["spec"].get("vmiName") == name
            and (other.get("status") or {}).get("phase") not in FINAL
            and (other.get("status") or {}).get("phase") is not None
            and other["metadata"]["creationTimestamp"] <= vmim["metadata"]["creationTimestamp"]
        ):
            return (
                "MigrationInFlight",
                f"in-flight migration detected. Active migration job ({other['metadata']['uid']}) is currently "
                f"already in progress for VMI {name}.",
            )
    return None


def target_pod_name(vmi: dict, vmim: dict) -> str:
    """Deterministic (KubeVirt uses generateName): a retried create cannot make a second target pod."""
    suffix = hashlib.sha256(vmim["metadata"]["uid"].encode()).hexdigest()[:5]
    return f"virt-launcher-{vmi['metadata']['name']}-{suffix}"


def target_pod(vmi: dict, vmim: dict) -> dict:
    """A launcher pod for the target: anti-affinity to the VMI's own pods' node, addedNodeSelector merged."""
    pod = launcher_pod(vmi)
    del pod["metadata"]["generateName"]
    pod["metadata"]["name"] = target_pod_name(vmi, vmim)
    pod["metadata"]["labels"][LABEL_MIGRATION_JOB] = vmim["metadata"]["uid"]
    spec = pod["spec"]
    added = vmim["spec"].get("addedNodeSelector") or {}
    spec["nodeSelector"] = {**added, **spec["nodeSelector"]}  # never overrides the VM's own keys
    affinity = copy.deepcopy(spec.get("affinity") or {})
    anti = affinity.setdefault("podAntiAffinity", {})
    anti.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append(
        {
            "labelSelector": {
                "matchExpressions": [{"key": LABEL_CREATED_BY, "operator": "In", "values": [vmi["metadata"]["uid"]]}]
            },
            "topologyKey": HOSTNAME_TOPOLOGY,
        }
    )
    spec["affinity"] = affinity
    return pod


@dataclass
class MigrationPlan:
    """One step of a migration; the glue writes in this order: pods, VMI, VMIM."""

    create_pod: dict | None = None
    delete_pods: list[str] = field(default_factory=list)
    vmi_status: dict | None = None  # keys to merge into the VMI's status
    vmi_labels: dict | None = None  # labels to merge (None values remove)
    vmim_labels: dict | None = None
    vmim_status: dict | None = None  # the VMIM's new status
    requeue_after: float | None = None


def _status(vmim: dict) -> dict:
    return copy.deepcopy(vmim.get("status") or {})


def _advance(status: dict, *phases: str) -> None:
    """Move through `phases` in order, recording each transition's time."""
    stamps = status.setdefault("phaseTransitionTimestamps", [])
    for phase in phases:
        if status.get("phase") != phase:
            status["phase"] = phase
            stamps.append({"phase": phase, "phaseTransitionTimestamp": now()})


def _fail(plan: MigrationPlan, status: dict, reason: str, message: str) -> None:
    _advance(status, "Failed")
    state = status.setdefault("migrationState", {})
    state.update({"failed": True, "failureReason": message, "completed": False})
    status["conditions"] = [
        {"type": "Failure", "status": "True", "reason": reason, "message": message, "lastTransitionTime": now()}
    ]
    plan.vmim_status = status


def plan_migration(
    vmim: dict,
    vmi: dict | None,
    pods: list[dict],
    migrations: list[dict],
    at: datetime,
    unschedulable_timeout: float = DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS,
) -> MigrationPlan:
    """The next step of one VMIM. `pods`: the VMI's launcher pods; `migrations`: all VMIMs of the namespace."""
    plan = MigrationPlan()
    status = _status(vmim)
    phase = status.get("phase")
    uid = vmim["metadata"]["uid"]
    target = next((p for p in pods if p["metadata"]["labels"].get(LABEL_MIGRATION_JOB) == uid), None)
    if phase in FINAL:
        if phase == "Failed" and target is not None and not target["metadata"].get("deletionTimestamp"):
            plan.delete_pods = [target["metadata"]["name"]]
        return plan
    vmi_name = vmim["spec"].get("vmiName", "")
    if (vmim["metadata"].get("labels") or {}).get(LABEL_VMI_NAME) != vmi_name:
        plan.vmim_labels = {LABEL_VMI_NAME: vmi_name}  # the mutating webhook's label
    if phase is None:
        refused = refusal(vmim, vmi, migrations)
        if refused:
            _fail(plan, status, *refused)
        else:
            _advance(status, "Pending")
            plan.vmim_status = status
        return plan
    vmi_phase = ((vmi or {}).get("status") or {}).get("phase")
    if vmi is None or vmi_phase != "Running" or vmi["metadata"].get("deletionTimestamp"):
        _fail(plan, status, "VMIGone", "the VMI stopped running during the migration")
        return plan
    step = {"Pending": _pending, "Scheduling": _scheduling, "Running": _running}.get(phase, _scheduled)
    step(plan, status, vmim, vmi, target, pods, at, unschedulable_timeout)
    return plan


def _pending(plan, status, vmim, vmi, target, pods, at, timeout) -> None:
    if target is None:
        plan.create_pod = target_pod(vmi, vmim)
    _advance(status, "Scheduling")
    plan.vmim_status = status


def _scheduling(plan, status, vmim, vmi, target, pods, at, timeout) -> None:
    if target is None:
        plan.create_pod = target_pod(vmi, vmim)  # lost before the cache saw it: create is idempotent
        return
    if target["metadata"].get("deletionTimestamp") or (target.get("status") or {}).get("phase") in FINAL:
        _fail(plan, status, "TargetPodGone", "the migration target pod disappeared")
        return
    if target["spec"].get("nodeName") and (target.get("status") or {}).get("phase") == "Running":
        _advance(status, "Scheduled")
        plan.vmim_status = status
        return
    scheduled = condition_of(target, "PodScheduled")
    if scheduled is not None and scheduled["status"] == "False" and scheduled.get("reason") == "Unschedulable":
        waited = (at - parse_time(target["metadata"]["creationTimestamp"])).total_seconds()
        if waited >= timeout:
            message = (
                f"Migration target pod for VMI [{vmi['metadata']['namespace']}/{vmi['metadata']['name']}] is "
                f"currently unschedulable: {scheduled.get('message', '')}"
            )
            _fail(plan, status, "TargetPodUnschedulable", message)
            return
        plan.requeue_after = timeout - waited


def _scheduled(plan, status, vmim, vmi, target, pods, at, timeout) -> None:
    """Scheduled -> PreparingTarget -> TargetReady -> Running: the handoff to the target."""
    if target is None:
        _fail(plan, status, "TargetPodGone", "the migration target pod disappeared")
        return
    source_node = vmi["status"].get("nodeName")
    source = next(
        (p["metadata"]["name"] for p in pods if p is not target and p["spec"].get("nodeName") == source_node), ""
    )
    stamp = now()
    state = {
        "migrationUid": vmim["metadata"]["uid"],
        "sourceNode": source_node,
        "sourcePod": source,
        "targetNode": target["spec"]["nodeName"],
        "targetPod": target["metadata"]["name"],
        "targetNodeAddress": (target.get("status") or {}).get("podIP", ""),
        "targetNodeDomainDetected": True,
        "targetNodeDomainReadyTimestamp": stamp,
        "startTimestamp": stamp,
        "mode": "PreCopy",
    }
    plan.vmi_status = {"migrationState": state}
    plan.vmi_labels = {LABEL_MIGRATION_TARGET_NODE: target["spec"]["nodeName"]}
    _advance(status, "PreparingTarget", "TargetReady", "Running")
    status["migrationState"] = state
    plan.vmim_status = status


def _running(plan, status, vmim, vmi, target, pods, at, timeout) -> None:
    """virt-handler: the migration completes (or, injected, fails); then nodeName switches."""
    annotations = vmi["metadata"].get("annotations") or {}
    state = dict((vmi.get("status") or {}).get("migrationState") or status.get("migrationState") or {})
    hold = float(annotations.get(SECONDS_ANNOTATION, "0") or 0)
    started = state.get("startTimestamp")
    if hold and started:
        remaining = (parse_time(started) + timedelta(seconds=hold) - at).total_seconds()
        if remaining > 0:
            plan.requeue_after = remaining
            return
    end = now()
    if annotations.get(FAIL_ANNOTATION) == "fail" or target is None:
        state.update(
            {"failed": True, "completed": False, "endTimestamp": end, "failureReason": "Live migration failed"}
        )
        plan.vmi_status = {"migrationState": state}
        plan.vmi_labels = {LABEL_MIGRATION_TARGET_NODE: None}
        _fail(plan, status, "MigrationFailed", "Live migration failed")
        status["migrationState"] = state
        if target is not None:
            plan.delete_pods = [target["metadata"]["name"]]
        return
    state.update({"completed": True, "endTimestamp": end})
    if state.get("sourcePod"):
        plan.delete_pods = [state["sourcePod"]]  # the source launcher completes
    # virt-handler on the target: the guest now runs with the spec's CPU topology and memory.
    plan.vmi_status = {"migrationState": state, "nodeName": state["targetNode"], **applied_status(vmi)}
    plan.vmi_labels = {LABEL_NODE_NAME: state["targetNode"], LABEL_MIGRATION_TARGET_NODE: None}
    status["migrationState"] = state
    _advance(status, "Succeeded")
    plan.vmim_status = status
