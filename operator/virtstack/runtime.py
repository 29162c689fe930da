"""The operator process: one ApiClient, the controllers' work queues, and a slow periodic resync."""

from __future__ import annotations

import asyncio
import logging
import random
from importlib.metadata import version
from typing import Any

import kopf
from kubernetes_asyncio import client, config

from . import handlers  # noqa: F401 - registers the kopf handlers
from .api.durations import parse_duration
from .api.settings import load_settings
from .controllers.affinitygroup import AffinityGroupController
from .controllers.base import Controller
from .controllers.gpuprofile import GPUProfileController
from .controllers.sshkeypair import SSHKeyPairController
from .controllers.virtualmachine import VirtualMachineController
from .kube import Kube

RESYNC_SECONDS = 600.0


USER_AGENT = f"virtstack/{version('virtstack')}"


async def _api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        await config.load_kube_config()
    api = client.ApiClient()
    api.user_agent = USER_AGENT  # the API server's audit log and metrics tell our requests apart by it
    return api


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING  # no Event per handler run: a no-op resync writes nothing
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    memo.settings = load_settings()
    settings.watching.inactivity_timeout = parse_duration(memo.settings.watchInactivityTimeout)
    memo.api = await _api_client()
    kube = Kube(memo.api)
    memo.vm_controller = VirtualMachineController(kube, memo.settings)
    memo.keypair_controller = SSHKeyPairController(kube)
    memo.group_controller = AffinityGroupController(kube)
    memo.gpu_controller = GPUProfileController(kube)
    controllers = [memo.vm_controller, memo.keypair_controller, memo.group_controller, memo.gpu_controller]
    memo.tasks = [asyncio.create_task(c.queue.run(), name=f"{c.name}-queue") for c in controllers]
    memo.tasks.append(asyncio.create_task(_resync(controllers), name="resync"))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.get("tasks", []):
        task.cancel()
    if "api" in memo:
        await memo.api.close()


@kopf.on.probe(id="reconcile-queue")
def queue_alive(memo: kopf.Memo, **_: Any) -> str:
    """Liveness: the work-queue tasks must still run; a dead one would silently stop reconciling."""
    dead = [task.get_name() for task in memo.get("tasks", []) if task.done()]
    if dead:
        raise RuntimeError(f"background tasks ended: {', '.join(dead)}")
    return "ok"


async def _resync(controllers: list[Controller]) -> None:
    """Requeue everything now and then: repairs anything a lost event left behind."""
    while True:
        await asyncio.sleep(RESYNC_SECONDS * random.uniform(0.9, 1.1))
        for controller in controllers:
            for key in controller.all_keys():
                controller.queue.add(key)


def run(namespaces: list[str], liveness: str | None) -> None:
    """Serve the namespaces given, else the settings' watchNamespaces, else all."""
    namespaces = namespaces or load_settings().watchNamespaces
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
