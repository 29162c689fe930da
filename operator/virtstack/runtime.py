"""The operator process: one ApiClient, leader election, the controllers' work queues, metrics, a slow resync."""

from __future__ import annotations

import asyncio
import logging
import random
from importlib.metadata import version
from typing import Any

import kopf
from kopf._core.engines.activities import ActivityError  # not exported by kopf (pinned in pyproject.toml)
from kubernetes_asyncio import client, config

from . import handlers, kopf_fixes, logs, metrics  # noqa: F401 - importing handlers registers the kopf handlers
from .api.durations import parse_duration
from .api.settings import load_settings
from .controllers.affinitygroup import AffinityGroupController
from .controllers.base import Controller
from .controllers.gpuprofile import GPUProfileController
from .controllers.iso import IsoController
from .controllers.sshkeypair import SSHKeyPairController
from .controllers.virtualmachine import VirtualMachineController
from .controllers.vmsnapshot import VMSnapshotController
from .kube import CountingApiClient, Kube
from .leader import LeaderElector, lease_config

log = logging.getLogger(__name__)

RESYNC_SECONDS = 600.0
LIST_PAGE = 500  # a start's listing in pages, as client-go's informers ask: no response with every object
INVENTORY_INDEXES = ("virtstack_vms", "gpu_profiles", "snapshot_phases")


def user_agent(identity: str | None) -> str:
    """The API server's audit log and metrics tell our requests, and each replica's, apart by it."""
    base = f"virtstack/{version('virtstack')}"
    return f"{base} ({identity})" if identity else base


async def _api_client(identity: str | None) -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        await config.load_kube_config()
    api = CountingApiClient()
    api.user_agent = user_agent(identity)
    return api


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """Every replica watches and indexes; only the one holding the Lease (or the only one) reconciles."""
    settings.posting.level = logging.WARNING  # no Event per handler run: a no-op resync writes nothing
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.chunk_size = LIST_PAGE
    memo.settings = load_settings()
    settings.watching.inactivity_timeout = parse_duration(memo.settings.watchInactivityTimeout)
    memo.tasks = []
    if memo.settings.metrics.enabled:
        indexes = {name: kwargs[name] for name in INVENTORY_INDEXES}
        memo.inventory = metrics.Inventory(lambda: indexes, lambda: bool(memo.tasks))
        try:
            memo.metrics = await metrics.serve(memo.settings.metrics.port, memo.inventory)
        except OSError as error:  # a port taken is a configuration error: stop, saying which
            raise kopf.PermanentError(f"cannot serve metrics on port {memo.settings.metrics.port}: {error}") from None
    lease = lease_config()
    memo.api = await _api_client(lease.identity if lease else None)
    kube = Kube(memo.api)
    memo.vm_controller = VirtualMachineController(kube, memo.settings)
    memo.keypair_controller = SSHKeyPairController(kube)
    memo.group_controller = AffinityGroupController(kube)
    memo.gpu_controller = GPUProfileController(kube)
    memo.snapshot_controller = VMSnapshotController(kube, memo.settings)
    memo.iso_controller = IsoController(kube, memo.settings)
    memo.controllers = [
        memo.vm_controller,
        memo.keypair_controller,
        memo.group_controller,
        memo.gpu_controller,
        memo.snapshot_controller,
        memo.iso_controller,
    ]
    if lease is None:
        _reconcile(memo)
    else:
        memo.elector = LeaderElector(memo.api, lease)
        memo.campaign = asyncio.create_task(_campaign(memo), name="leader-election")


def _reconcile(memo: kopf.Memo) -> None:
    """Start the work queues (keys queued meanwhile by the event handlers are handled first) and the resync."""
    controllers = memo.controllers
    memo.tasks = [asyncio.create_task(c.queue.run(), name=f"{c.name}-queue") for c in controllers]
    memo.tasks.append(asyncio.create_task(_resync(controllers), name="resync"))
    metrics.LEADER.set(1)


async def _stop_reconciling(memo: kopf.Memo) -> None:
    """Cancel the work queues and wait for them: nothing of ours writes after this returns."""
    tasks, memo.tasks = memo.get("tasks", []), []
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    metrics.LEADER.set(0)


async def _campaign(memo: kopf.Memo) -> None:
    """Wait for the Lease, reconcile while holding it; once lost, stop writing at once and exit (non-zero)."""
    try:
        await memo.elector.run(lambda: _reconcile(memo))
    except asyncio.CancelledError:
        raise  # shutting down: cleanup() stops the queues, then hands the Lease back
    except Exception:  # noqa: BLE001 - the election failed: as with a lost Lease, nothing may write any more
        log.exception("the leader election failed")
    await _stop_reconciling(memo)
    memo.leadership_lost = True
    memo.stop.set()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "campaign" in memo:
        memo.campaign.cancel()
    await _stop_reconciling(memo)
    if "elector" in memo:
        await memo.elector.release()  # after the queues stopped: the next leader never overlaps with us
    if "metrics" in memo:
        await metrics.stop(memo.metrics, memo.inventory)
    if "api" in memo:
        await memo.api.close()


@kopf.on.probe(id="reconcile-queue")
def queue_alive(memo: kopf.Memo, **_: Any) -> str:
    """Liveness: the work queues (and the election) must still run; a dead one would silently stop reconciling."""
    tasks = [*memo.get("tasks", []), *([memo.campaign] if "campaign" in memo else [])]
    dead = [task.get_name() for task in tasks if task.done()]
    if dead:
        raise RuntimeError(f"background tasks ended: {', '.join(dead)}")
    return "leading" if memo.get("tasks") else "standby"


async def _resync(controllers: list[Controller]) -> None:
    """Requeue everything now and then: repairs anything a lost event left behind."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS * random.uniform(0.9, 1.1))
        for controller in controllers:
            for key in controller.all_keys():
                controller.queue.add(key)


def run(namespaces: list[str], liveness: str | None) -> int:
    """Serve the namespaces given, else the settings' watchNamespaces, else all. Non-zero: leadership lost."""
    settings = load_settings()
    logs.configure(settings.logFormat)
    kopf_fixes.install()
    namespaces = namespaces or settings.watchNamespaces
    memo = kopf.Memo(stop=asyncio.Event(), leadership_lost=False)
    try:
        kopf.run(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            stop_flag=memo.stop,
            memo=memo,
        )
    except ActivityError:  # kopf has logged which start-up step failed and why; no second traceback
        log.error("the operator did not start")
        return 1
    if memo.leadership_lost:
        log.error("stopped after losing the leader Lease; a restart campaigns again")
        return 1
    return 0
