"""Prometheus metrics: the work queues' reconciles, API requests, and the inventory seen in kopf's indexes.

The inventory gauges (VMs by state, GPUs per profile, snapshots by phase) are computed at scrape
time from the indexes, on the event loop, so they are never stale and never race the watchers.
Only the replica that reconciles reports them: a standby's copy would double every sum().
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

RECONCILE_DURATION = Histogram(
    "virtstack_reconcile_duration_seconds",
    "Time one reconcile of one object took, by kind (work queue).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter(
    "virtstack_reconcile_errors_total", "Reconciles that failed and were retried with backoff, by kind.", ["kind"]
)
API_REQUESTS = Counter(
    "virtstack_api_requests_total",
    "Requests to the Kubernetes API by verb, resource (plural.group/subresource) and response code.",
    ["verb", "resource", "code"],
)
LEADER = Gauge("virtstack_leader", "1 while this replica reconciles (holds the leader Lease, or runs alone).")

WATCH = ("watch", "true")


def describe_request(method: str, url: str, query: Iterable[tuple[str, Any]] | None, content_type: str = "") -> tuple:
    """(verb, resource) of an API request, in the API server's own words (get/list/watch/apply/...)."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        return method.lower(), "nonresource"
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    plural, named, subresource = rest[0] if rest else "", len(rest) > 1, rest[2] if len(rest) > 2 else ""
    resource = (f"{plural}.{group}" if group else plural) + (f"/{subresource}" if subresource else "")
    if method == "GET":
        watching = any((k, str(v).lower()) == WATCH for k, v in query or ())
        verb = "watch" if watching else "get" if named else "list"
    elif method == "PATCH" and content_type.startswith("application/apply-patch"):
        verb = "apply"
    elif method == "DELETE" and not named:
        verb = "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower())
    return verb, resource


def vm_states(vms: Mapping) -> Tally:
    """(namespace, state) -> VMs; a VM not yet reconciled counts as Unknown."""
    return Tally(
        (namespace, (vm.get("status") or {}).get("state") or "Unknown")
        for (namespace, _), store in vms.items()
        for vm in store
    )


def gpu_figures(profiles: Mapping) -> dict[str, dict[str, int]]:
    """profile -> its status' capacity, allocated and available units (absent until first reconciled)."""
    figures = {}
    for name, store in profiles.items():
        for profile in store:
            status = profile.get("status") or {}
            figures[name] = {k: status[k] for k in ("capacity", "allocated", "available") if status.get(k) is not None}
    return figures


def snapshot_phases(snapshots: Mapping) -> Tally:
    """(namespace, phase) -> VMSnapshots; from the snapshot_phases index (values: phases)."""
    return Tally((namespace, phase or "Unknown") for (namespace, _), store in snapshots.items() for phase in store)


class Inventory(Collector):
    """Gauges computed from kopf's indexes at each scrape, while this replica reconciles."""

    def __init__(self, indexes: Callable[[], Mapping[str, Any]], reconciling: Callable[[], bool]) -> None:
        self.indexes = indexes
        self.reconciling = reconciling

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self.reconciling():
            return
        indexes = self.indexes()
        vms = GaugeMetricFamily(
            "virtstack_virtual_machines", "VirtualMachines by state.", labels=["namespace", "state"]
        )
        for (namespace, state), count in sorted(vm_states(indexes["virtstack_vms"]).items()):
            vms.add_metric([namespace, state], count)
        yield vms
        gpus = {
            figure: GaugeMetricFamily(
                f"virtstack_gpu_{figure}", f"GPU units {figure} per GPUProfile.", labels=["profile"]
            )
            for figure in ("capacity", "allocated", "available")
        }
        for profile, figures in sorted(gpu_figures(indexes["gpu_profiles"]).items()):
            for figure, value in figures.items():
                gpus[figure].add_metric([profile], value)
        yield from gpus.values()
        snapshots = GaugeMetricFamily("virtstack_vm_snapshots", "VMSnapshots by phase.", labels=["namespace", "phase"])
        for (namespace, phase), count in sorted(snapshot_phases(indexes["snapshot_phases"]).items()):
            snapshots.add_metric([namespace, phase], count)
        yield snapshots


async def serve(port: int, inventory: Inventory) -> web.AppRunner:
    """/metrics on every address of the pod, on the event loop (the collectors read the indexes there)."""
    REGISTRY.register(inventory)

    async def metrics(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))  # OpenMetrics when asked for
        response = web.Response(body=encode(REGISTRY))
        response.headers["Content-Type"] = content_type
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - scraped through the pod's address
    return runner


async def stop(runner: web.AppRunner, inventory: Inventory) -> None:
    await runner.cleanup()
    REGISTRY.unregister(inventory)
