"""CDI's DataVolume controller and importer pods (decisions in ../cdi.py).

The importer of an `http` source runs inside the simulator as a task that really downloads the
URL (pkg/importer/http-datasource.go) and counts the bytes, discarding them; a failed attempt is
retried after the pod restart back-off, as the kubelet restarts an importer pod with
`restartPolicy: OnFailure`. A restarted simulator starts interrupted imports again from zero, as
a new importer pod would. The PVC of each DataVolume is bound to a PersistentVolume the simulator
creates (the testbed has no storage provisioner); Released volumes are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException
from virtstack.workqueue import WorkQueue

from ..cdi import ImportProgress, dv_status, import_backoff, pv_for, pvc_for, source_kind
from ..informer import Key
from .kube import CDI, STRICT, ignore_not_found, merge_patch_for

if TYPE_CHECKING:
    from . import Simulator

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
PROGRESS_INTERVAL = 0.5  # seconds between progress writes while importing


class DataVolumeController:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.kube = sim.kube
        self.queue = WorkQueue("datavolume", self.sync)
        self.volumes = WorkQueue("persistentvolume", self.sync_volume, workers=2)
        self._imports: dict[str, tuple[Key, ImportProgress, asyncio.Task]] = {}  # by DataVolume uid
        self._session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60))
        try:
            await asyncio.gather(self.queue.run(), self.volumes.run())
        finally:
            await self._session.close()

    def pvc_changed(self, pvc: dict) -> None:
        namespace = pvc["metadata"]["namespace"]
        for key, vmi in list(self.sim.vmis.cache.items()):  # a VMI waiting for this claim
            if key[0] == namespace and (vmi.get("status") or {}).get("phase") in (None, "Pending"):
                self.sim.vmi.queue.add(key)
        for ref in pvc["metadata"].get("ownerReferences", []):
            if ref.get("kind") == "DataVolume":
                self.queue.add((pvc["metadata"]["namespace"], ref["name"]))

    async def sync(self, key: Key) -> None:
        dv = self.sim.dvs.cache.get(key)
        if dv is None or dv["metadata"].get("deletionTimestamp"):
            self._stop_imports(key)
            return
        final = (dv.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        self._stop_imports(key, keep=None if final else dv["metadata"]["uid"])  # done, or an older DataVolume's
        namespace, name = key
        pvc = self.sim.pvcs.cache.get(key)
        if pvc is None:
            await self._create_pvc(dv)
        elif (
            (pvc.get("status") or {}).get("phase") != "Bound"
            and _owned_by(pvc, dv)
            and not pvc["spec"].get("volumeName")
        ):
            await self._create_pv(pvc)
        progress = self._import(dv, pvc)
        datasource = self._datasource(dv)
        old = dv.get("status") or {}
        status = dv_status(dv, pvc, progress, datasource)
        if _differs(old, status):
            body = {"metadata": {"resourceVersion": dv["metadata"]["resourceVersion"]}}
            body["status"] = merge_patch_for(old, status)
            await self.kube.patch(CDI, namespace, "datavolumes", name, body, status=True)

    async def sync_volume(self, key: Key) -> None:
        """A Released volume of ours (its claim deleted) goes, as a provisioner's Delete policy would."""
        pv = self.sim.pvs.cache.get(key)
        if pv is not None and (pv.get("status") or {}).get("phase") == "Released":
            await ignore_not_found(self.kube.core.delete_persistent_volume(pv["metadata"]["name"]))

    # --- PVC and PV ---------------------------------------------------------------------------
    async def _create_pvc(self, dv: dict) -> None:
        try:
            await self.kube.core.create_namespaced_persistent_volume_claim(
                dv["metadata"]["namespace"], pvc_for(dv), field_validation=STRICT
            )
        except ApiException as error:
            if error.status != 409:
                raise

    async def _create_pv(self, pvc: dict) -> None:
        try:
            await self.kube.core.create_persistent_volume(pv_for(pvc), field_validation=STRICT)
        except ApiException as error:
            if error.status != 409:
                raise

    def _datasource(self, dv: dict) -> dict | None:
        ref = (dv.get("spec") or {}).get("sourceRef")
        if not ref:
            return None
        return self.sim.datasources.cache.get((ref.get("namespace") or dv["metadata"]["namespace"], ref["name"]))

    # --- the importer ---------------------------------------------------------------------------
    def _import(self, dv: dict, pvc: dict | None) -> ImportProgress | None:
        """The importer's progress; started once the PVC is bound (the importer pod mounts it)."""
        if source_kind(dv) != "http":
            return None
        uid = dv["metadata"]["uid"]
        if uid in self._imports:
            return self._imports[uid][1]
        if (pvc or {}).get("status", {}).get("phase") != "Bound" or (dv.get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
        ):
            return None
        progress = ImportProgress(restarts=(dv.get("status") or {}).get("restartCount", 0))
        key = (dv["metadata"]["namespace"], dv["metadata"]["name"])
        task = asyncio.create_task(self._download(key, dv["spec"]["source"]["http"]["url"], progress))
        self._imports[uid] = (key, progress, task)
        return progress

    async def _download(self, key: Key, url: str, progress: ImportProgress) -> None:
        assert self._session is not None
        while True:
            try:
                async with self._session.get(url) as response:
                    if response.status != 200:
                        raise _ImportError(
                            "Unable to connect to http data source: expected status code 200, "
                            f"got {response.status}. Status: {response.status} {response.reason}"
                        )
                    progress.total, progress.bytes_read, progress.running, progress.error = (
                        response.content_length,
                        0,
                        True,
                        None,
                    )
                    self.queue.add(key)
                    last = time.monotonic()
                    async for chunk in response.content.iter_chunked(CHUNK):
                        progress.bytes_read += len(chunk)
                        if time.monotonic() - last >= PROGRESS_INTERVAL:
                            last = time.monotonic()
                            self.queue.add(key)
                progress.done, progress.running = True, False
                self.queue.add(key)
                return
            except asyncio.CancelledError:
                raise
            except (_ImportError, aiohttp.ClientError, OSError, TimeoutError) as error:
                progress.error = str(error) or type(error).__name__
                progress.running = False
                progress.restarts += 1
                self.queue.add(key)
                await asyncio.sleep(import_backoff(progress.restarts, self.sim.options.import_backoff_seconds))

    def _stop_imports(self, key: Key, keep: str | None = None) -> None:
        """Cancel the importers of this DataVolume name, except the one of uid `keep`."""
        for uid, (import_key, _, task) in list(self._imports.items()):
            if import_key == key and uid != keep:
                task.cancel()
                del self._imports[uid]


class _ImportError(Exception):
    pass


def _owned_by(pvc: dict, dv: dict) -> bool:
    return any(ref.get("uid") == dv["metadata"]["uid"] for ref in pvc["metadata"].get("ownerReferences", []))


def _differs(old: dict, new: dict) -> bool:
    def strip(status: dict) -> dict:
        conditions = [
            {k: v for k, v in c.items() if k not in ("lastTransitionTime", "lastHeartbeatTime")}
            for c in status.get("conditions", [])
        ]
        return {**status, "conditions": conditions}

    return strip(old) != strip(new)
