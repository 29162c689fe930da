"""The simulator's tunables: KubeVirt's defaults, shortened by tests through CLI flags."""

from __future__ import annotations

from dataclasses import dataclass

from .migration import DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS
from .node import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_HEARTBEAT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Options:
    # virt-handler's heartbeat period (pkg/virt-handler/heartbeat/heartbeat.go: 1 min, jittered).
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    # virt-controller's node controller: a heartbeat older than this makes the node unresponsive (5 min).
    heartbeat_timeout_seconds: float = DEFAULT_HEARTBEAT_TIMEOUT_SECONDS
    # Multiplies the VM controller's startFailure back-off (10 s x count^2, cap 300 s); 1 = KubeVirt's.
    backoff_scale: float = 1.0
    # migration.go: a migration whose target pod stays unschedulable this long fails (5 min).
    migration_unschedulable_timeout_seconds: float = DEFAULT_UNSCHEDULABLE_TIMEOUT_SECONDS
    # The first restart delay of a failing CDI importer pod (the kubelet's back-off: 10 s, doubling, cap 5 min).
    import_backoff_seconds: float = 10.0
