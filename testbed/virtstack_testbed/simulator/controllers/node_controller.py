"""virt-handler's heartbeat and virt-controller's node controller (decisions in ../node.py).

Follows kubevirt/kubevirt pkg/virt-handler/heartbeat/heartbeat.go (a Ready node -- one whose
virt-handler is alive -- is patched with `kubevirt.io/heartbeat` and `kubevirt.io/schedulable=true`,
and device-plugin resources) and pkg/virt-controller/watch/node/node.go (an expired heartbeat sets
`kubevirt.io/schedulable=false`; the VMIs of that node are re-checked, and the VMI controller fails
those without a live launcher pod with reason NodeUnresponsive).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException
from virtstack.workqueue import WorkQueue

from ..clock import now
from ..informer import Key
from ..node import HEARTBEAT_ANNOTATION, LABEL_SCHEDULABLE, heartbeat_age, node_ready, unresponsive
from .kube import MERGE_PATCH, STRICT

if TYPE_CHECKING:
    from . import Simulator

log = logging.getLogger(__name__)

# virt-handler's device plugins advertise these on every host it runs on (--max-devices, default 1000).
DEVICE_PLUGIN_RESOURCES = {f"devices.kubevirt.io/{name}": "1k" for name in ("kvm", "tun", "vhost-net")}


class NodeController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.options = sim.options
        self.queue = WorkQueue("node", self.sync, workers=2)

    def unresponsive(self, node_name: str | None) -> bool:
        if not node_name:
            return False
        node = self.sim.nodes.cache.get(("", node_name))
        return unresponsive(node, datetime.now(UTC), self.options.heartbeat_timeout_seconds)

    async def run(self) -> None:
        await asyncio.gather(self.queue.run(), self._heartbeat_loop(), self._check_loop())

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_seconds)
            await self.heartbeat_all()

    async def _check_loop(self) -> None:
        """node.go re-examines every node periodically: an expired heartbeat produces no event."""
        period = min(max(self.options.heartbeat_timeout_seconds / 5, 0.5), 30.0)
        while True:
            await asyncio.sleep(period)
            for key in list(self.sim.nodes.cache):
                self.queue.add(key)

    async def heartbeat_all(self) -> None:
        for node in list(self.sim.nodes.cache.values()):
            if node_ready(node):
                await self._heartbeat(node)

    async def sync(self, key: Key) -> None:
        node = self.sim.nodes.cache.get(key)
        if node is None:
            return
        at = datetime.now(UTC)
        age = heartbeat_age(node, at)
        if node_ready(node) and (age is None or age > self.options.heartbeat_seconds):
            # A node back from the dead (or new) runs a fresh virt-handler, which beats at start.
            await self._heartbeat(node)
            return
        if unresponsive(node, at, self.options.heartbeat_timeout_seconds):
            name = node["metadata"]["name"]
            if (node["metadata"].get("labels") or {}).get(LABEL_SCHEDULABLE) != "false":
                log.info("node %s: virt-handler heartbeat expired; marking it unschedulable", name)
                patch = {"metadata": {"labels": {LABEL_SCHEDULABLE: "false"}}}
                await self.sim.kube.core.patch_node(name, patch, field_validation=STRICT, _content_type=MERGE_PATCH)
            for vmi in self.sim.vmis_on_node(name):
                self.sim.vmi.queue.add((vmi["metadata"]["namespace"], vmi["metadata"]["name"]))

    async def _heartbeat(self, node: dict) -> None:
        name = node["metadata"]["name"]
        patch = {"metadata": {"labels": {LABEL_SCHEDULABLE: "true"}, "annotations": {HEARTBEAT_ANNOTATION: now()}}}
        try:
            allocatable = (node.get("status") or {}).get("allocatable", {})
            if any(allocatable.get(resource) != count for resource, count in DEVICE_PLUGIN_RESOURCES.items()):
                devices = {"status": {"capacity": DEVICE_PLUGIN_RESOURCES, "allocatable": DEVICE_PLUGIN_RESOURCES}}
                await self.sim.kube.core.patch_node_status(
                    name, devices, field_validation=STRICT, _content_type=MERGE_PATCH
                )
            await self.sim.kube.core.patch_node(name, patch, field_validation=STRICT, _content_type=MERGE_PATCH)
        except ApiException as error:
            log.warning("heartbeat for node %s failed: %s", name, error.reason)
        except (TimeoutError, OSError, aiohttp.ClientError) as error:  # the API server restarting: beat next time
            log.warning("heartbeat for node %s failed: %s", name, error)
