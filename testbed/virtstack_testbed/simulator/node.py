"""Node liveness: virt-handler's heartbeat and virt-controller's node-loss rule (pure).

virt-handler (kubevirt/kubevirt pkg/virt-handler/heartbeat/heartbeat.go) patches its node with the
annotation `kubevirt.io/heartbeat` and the label `kubevirt.io/schedulable=true` about once a minute.
virt-controller's node controller (pkg/virt-controller/watch/node/node.go) treats a node whose
heartbeat is older than its timeout (5 minutes) as unresponsive: it labels it
`kubevirt.io/schedulable=false` and fails, with reason `NodeUnresponsive`, the VMIs of that node
that have no live launcher pod (a Terminating pod still counts as live).
"""

from __future__ import annotations

from datetime import UTC, datetime

from virtstack.objects import condition_of

HEARTBEAT_ANNOTATION = "kubevirt.io/heartbeat"
LABEL_SCHEDULABLE = "kubevirt.io/schedulable"
NODE_UNRESPONSIVE = "NodeUnresponsive"
DEFAULT_HEARTBEAT_SECONDS = 60.0  # virt-handler: about a minute, jittered
DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 300.0  # virt-controller: 5 minutes


def node_ready(node: dict) -> bool:
    return (condition_of(node, "Ready") or {}).get("status") == "True"


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def heartbeat_age(node: dict, at: datetime) -> float | None:
    """Seconds since the node's last heartbeat; None when it never had one."""
    beat = (node["metadata"].get("annotations") or {}).get(HEARTBEAT_ANNOTATION)
    if not beat:
        return None
    try:
        return (at - parse_time(beat)).total_seconds()
    except ValueError:
        return None


def unresponsive(node: dict | None, at: datetime, timeout: float) -> bool:
    """node.go isNodeUnresponsive: a heartbeat older than the timeout. A node without one (virt-handler
    never ran there) is left alone, and so is a node that no longer exists: its VMIs fail by the
    pod-gone rule once their pods are deleted."""
    if node is None:
        return False
    age = heartbeat_age(node, at)
    return age is not None and age > timeout
