"""KubeVirt's VMI lifecycle, virt-controller and virt-handler halves together (pure).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vmi/lifecycle.go (Pending -> Scheduling ->
Scheduled as the launcher pod is created, bound and started; a VMI whose pod is gone fails),
pkg/virt-handler/vm.go (Scheduled -> Running once the domain runs; the simulated domain starts at
once; guest shutdown -> Succeeded, crash -> Failed, injected through guest.py) and
pkg/virt-controller/watch/node/node.go (the node-loss rule, see node.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from virtstack.objects import condition_of

from .clock import now
from .guest import BOOT_FAILURE, CRASH, SHUTDOWN, access_credentials_synchronized, agent_connected, guest_event
from .hotplug import boot_status, pending_changes
from .migration import live_migratable
from .node import NODE_UNRESPONSIVE
from .vm import FINAL_PHASES

FOREGROUND_FINALIZER = "kubevirt.io/foregroundDeleteVirtualMachine"
LABEL_NODE_NAME = "kubevirt.io/nodeName"
FAILED_CREATE = "FailedCreate"  # controller.FailedCreatePodReason: the condition's and the Event's reason


@dataclass
class VmiPlan:
    """What the controller must do for one VMI; the glue carries it out in this order."""

    create_pod: bool = False
    delete_pods: list[str] = field(default_factory=list)
    status: dict | None = None  # the new status, when it differs
    labels: dict[str, str] = field(default_factory=dict)  # labels to set
    finalizers: list[str] | None = None  # the new finalizer list, when it differs


def live_pods(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def plan_vmi(
    vmi: dict,
    pods: list[dict],
    node_unresponsive: bool = False,
    shared_claims: frozenset[str] = frozenset(),
    missing_claims: tuple[str, ...] = (),
) -> VmiPlan:
    """The VMI's next step. `node_unresponsive`: the heartbeat of the VMI's node has expired;
    `shared_claims`: its PVCs / DataVolumes known to be ReadWriteMany (for LiveMigratable);
    `missing_claims`: PVCs its volumes name that do not exist (no launcher pod until they do)."""
    status = dict(vmi.get("status") or {})
    plan = VmiPlan()
    current = _current_pod(pods, status)
    if vmi["metadata"].get("deletionTimestamp"):
        _plan_deletion(vmi, pods, status, plan)
    elif status.get("phase") in FINAL_PHASES:
        plan.delete_pods = [p["metadata"]["name"] for p in live_pods(pods)]
    else:
        _advance_phase(vmi, pods, current, status, plan, node_unresponsive)
    if status.get("phase") in ("Scheduled", "Running") and current is not None:
        status["interfaces"] = _interfaces(vmi, current)
        status["activePods"] = {current["metadata"]["uid"]: current["spec"].get("nodeName", "")}
    migratable = live_migratable(vmi, shared_claims)
    status["conditions"] = _conditions(
        status, current, agent_connected(vmi), migratable, access_credentials_synchronized(vmi)
    )
    if missing_claims and status.get("phase") == "Pending" and not pods:
        # lifecycle.go: the launcher pod waits for its PVCs; Synchronized=False/FailedPvcNotFound.
        plan.create_pod = False
        namespace = vmi["metadata"].get("namespace", "")
        missing = {
            "type": "Synchronized",
            "status": "False",
            "reason": "FailedPvcNotFound",
            "message": f"PVC {namespace}/{missing_claims[0]} does not exist, waiting for it to appear",
        }
        before = condition_of(vmi, "Synchronized")
        status["conditions"].append(_with_times(missing, before))
    if status.get("phase") == "Running":
        status["conditions"] += _hot_changes({**vmi, "status": status}, vmi.get("status") or {})
    _record_phase_transition(vmi.get("status") or {}, status)
    if status != (vmi.get("status") or {}):
        plan.status = status
    return plan


def failed_create(vmi: dict, status: dict | None, error: str) -> dict:
    """lifecycle.go: the launcher pod's creation was refused (a ResourceQuota, a policy). KubeVirt
    reports the sync error as `Synchronized=False/FailedCreate` and retries with back-off; the next
    sync without an error drops the condition (plan_vmi rebuilds the conditions)."""
    status = dict(status if status is not None else vmi.get("status") or {})
    before = condition_of(vmi, "Synchronized")
    failed = {
        "type": "Synchronized",
        "status": "False",
        "reason": FAILED_CREATE,
        "message": f"failed to create virtual machine pod: {error}",
    }
    others = [c for c in status.get("conditions", []) if c["type"] != "Synchronized"]
    status["conditions"] = [*others, _with_times(failed, before)]
    return status


def _plan_deletion(vmi: dict, pods: list[dict], status: dict, plan: VmiPlan) -> None:
    """Delete the launcher pods; once they are gone, end Succeeded (a graceful stop) and let go."""
    plan.delete_pods = [p["metadata"]["name"] for p in live_pods(pods)]
    if pods:
        return
    if status.get("phase") not in FINAL_PHASES:
        status["phase"] = "Succeeded"
    finalizers = vmi["metadata"].get("finalizers") or []
    if FOREGROUND_FINALIZER in finalizers:
        plan.finalizers = [f for f in finalizers if f != FOREGROUND_FINALIZER]


def _advance_phase(
    vmi: dict, pods: list[dict], current: dict | None, status: dict, plan: VmiPlan, node_unresponsive: bool
) -> None:
    phase = status.get("phase")
    event = guest_event(vmi)
    if not phase:
        status["phase"] = "Pending"
        finalizers = vmi["metadata"].get("finalizers") or []
        if FOREGROUND_FINALIZER not in finalizers:
            plan.finalizers = [*finalizers, FOREGROUND_FINALIZER]
    elif phase == "Pending":
        if pods:
            status["phase"] = "Scheduling"
        else:
            plan.create_pod = True
    elif current is None or current["status"].get("phase") in FINAL_PHASES:
        # lifecycle.go: a Scheduling/Scheduled/Running VMI whose pod is gone or ended has failed;
        # a pod that is merely Terminating keeps the VMI as it is. node.go: when the VMI's node has
        # stopped beating too, virt-controller's node controller fails it with NodeUnresponsive.
        status["phase"] = "Failed"
        if node_unresponsive and status.get("nodeName"):
            status["reason"] = NODE_UNRESPONSIVE
        else:
            status["reason"] = "PodNotExists" if current is None else "PodFailed"
    elif phase == "Scheduling" and _pod_started(current):
        status["phase"] = "Scheduled"
        status["nodeName"] = current["spec"]["nodeName"]
        plan.labels[LABEL_NODE_NAME] = current["spec"]["nodeName"]
    elif phase == "Scheduled":
        _boot(vmi, status, event)
    elif phase == "Running" and event in (SHUTDOWN, CRASH):
        # virt-handler.go: domain Shutoff/Shutdown -> Succeeded; Crashed / guest panic -> Failed.
        status["phase"] = "Succeeded" if event == SHUTDOWN else "Failed"


def _boot(vmi: dict, status: dict, event: str | None) -> None:
    """virt-handler.go: the domain starts, or (injected) never does; it reports what it booted with."""
    if event == BOOT_FAILURE:
        status["phase"] = "Failed"
        return
    status["phase"] = "Running"
    status.update(boot_status(vmi.get("spec") or {}))


def _current_pod(pods: list[dict], status: dict) -> dict | None:
    """The pod the VMI runs in: the one on its node, else the newest live one."""
    node = status.get("nodeName")
    for pod in pods:
        if node and pod["spec"].get("nodeName") == node:
            return pod
    live = live_pods(pods)
    return max(live, key=lambda p: p["metadata"]["creationTimestamp"]) if live else (pods[0] if pods else None)


def _pod_started(pod: dict) -> bool:
    return bool(pod["spec"].get("nodeName")) and pod["status"].get("phase") == "Running"


def _interfaces(vmi: dict, pod: dict) -> list[dict]:
    ip = pod["status"].get("podIP")
    if not ip:
        return (vmi.get("status") or {}).get("interfaces", [])
    interfaces = vmi["spec"].get("domain", {}).get("devices", {}).get("interfaces") or [{"name": "default"}]
    digest = hashlib.sha256(vmi["metadata"]["uid"].encode()).digest()
    mac = "02:" + ":".join(f"{b:02x}" for b in digest[:5])
    return [
        {
            "name": interfaces[0]["name"],
            "ipAddress": ip,
            "ipAddresses": [ip],
            "mac": mac,
            "infoSource": "domain",
            "interfaceName": "eth0",
            "podInterfaceName": "eth0",
            "queueCount": 1,
        }
    ]


def _conditions(
    status: dict,
    pod: dict | None,
    agent: bool = False,
    migratable: dict | None = None,
    credentials: dict | None = None,
) -> list[dict]:
    previous = {c["type"]: c for c in status.get("conditions", [])}
    conditions: list[dict] = []
    scheduled = condition_of(pod, "PodScheduled")
    if scheduled is not None and scheduled["status"] == "False":
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": scheduled.get("reason", ""),
                "message": scheduled.get("message", ""),
            }
        )
    pod_ready = condition_of(pod, "Ready")
    if status.get("phase") in FINAL_PHASES:
        ready = {"type": "Ready", "status": "False", "reason": "PodTerminating" if pod else "PodNotExists"}
    elif pod is None:
        ready = {"type": "Ready", "status": "False", "reason": "PodNotExists"}
    elif pod["metadata"].get("deletionTimestamp"):
        ready = {"type": "Ready", "status": "False", "reason": "PodTerminating"}
    elif status.get("phase") != "Running":
        ready = {"type": "Ready", "status": "False", "reason": "GuestNotRunning"}
    elif pod_ready is None:
        ready = {"type": "Ready", "status": "False", "reason": "PodConditionMissing"}
    else:
        ready = {"type": "Ready", "status": pod_ready["status"]}
    conditions.append(ready)
    if status.get("phase") == "Running":
        # LiveMigratable: True without a reason, or False with KubeVirt's reason (migration.py).
        conditions.append(migratable or {"type": "LiveMigratable", "status": "True"})
        if agent:
            # virt-handler: AgentConnected=True while the agent answers; removed (never False) when it goes.
            conditions.append({"type": "AgentConnected", "status": "True"})
        if credentials is not None:
            conditions.append(credentials)
    return [_with_times(c, previous.get(c["type"])) for c in conditions]


def _hot_changes(vmi: dict, previous: dict) -> list[dict]:
    """HotVCPUChange / HotMemoryChange while the spec is ahead of the guest (hotplug.py)."""
    before = {c["type"]: c for c in previous.get("conditions", [])}
    return [_with_times(c, before.get(c["type"])) for c in pending_changes(vmi)]


def _with_times(condition: dict, previous: dict | None) -> dict:
    unchanged = previous is not None and previous["status"] == condition["status"]
    transition = previous.get("lastTransitionTime") if unchanged else now()
    return {**condition, "lastProbeTime": None, "lastTransitionTime": transition}


def _record_phase_transition(old: dict, new: dict) -> None:
    timestamps = list(old.get("phaseTransitionTimestamps", []))
    if new.get("phase") and new.get("phase") != old.get("phase"):
        timestamps.append({"phase": new["phase"], "phaseTransitionTimestamp": now()})
    if timestamps:
        new["phaseTransitionTimestamps"] = timestamps
