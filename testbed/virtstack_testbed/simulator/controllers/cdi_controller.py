"""CDI's DataVolume controller, minimal (decisions in ../cdi.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtstack.workqueue import WorkQueue

from ..cdi import dv_status
from ..informer import Key
from .kube import CDI, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator


class DataVolumeController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.queue = WorkQueue("datavolume", self.sync)

    async def run(self) -> None:
        await self.queue.run()

    async def sync(self, key: Key) -> None:
        dv = self.sim.dvs.cache.get(key)
        if dv is None or dv["metadata"].get("deletionTimestamp"):
            return
        old = dv.get("status") or {}
        status = dv_status(dv)
        if status != old:
            namespace, name = key
            body = {"metadata": {"resourceVersion": dv["metadata"]["resourceVersion"]}}
            body["status"] = merge_patch_for(old, status)
            await self.sim.kube.patch(CDI, namespace, "datavolumes", name, body, status=True)
