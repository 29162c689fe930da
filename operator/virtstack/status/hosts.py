"""When a VM's host counts as down: CloudStack's rule, a host that stopped reporting for a while (pure).

A Node whose Ready condition is not True (kubelet, here kwok, stopped heartbeating: the
node-lifecycle controller sets it Unknown) since `since` is down once `after` seconds have passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HostHealth:
    down: bool
    not_ready_for: float  # seconds, 0 while Ready
    recheck_in: float | None  # when the verdict changes without any event, if it will


def host_health(node: dict | None, now: datetime, after: float) -> HostHealth:
    """A missing Node is treated as down: its VMs have nowhere to run."""
    if node is None:
        return HostHealth(down=True, not_ready_for=after, recheck_in=None)
    since = node.get("notReadySince")
    if node.get("ready") or since is None:
        return HostHealth(down=False, not_ready_for=0.0, recheck_in=None)
    elapsed = max(0.0, (now - datetime.fromisoformat(since.replace("Z", "+00:00"))).total_seconds())
    if elapsed >= after:
        return HostHealth(down=True, not_ready_for=elapsed, recheck_in=None)
    return HostHealth(down=False, not_ready_for=elapsed, recheck_in=after - elapsed)
