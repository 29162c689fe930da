"""Reconcile one ISO: check its URL, read it, import it with CDI, verify its checksum, report who uses it.

Before CDI imports anything the operator resolves the URL's host and refuses internal addresses
(urlguard.py), then reads the URL itself through the same guard: the response gives the size the
DataVolume needs, and a full read gives the digest that `spec.checksum` is checked against (CDI
cannot check one). The read is kept in memory; what must survive a restart is in the status
(size, verifiedChecksum, failedAttempts, startedAt) or on the DataVolume (the failed reads before it).

Deletion: the ISO carries the finalizer `virtstack.io/iso-in-use` from its first reconcile, and
the operator removes it once no VM uses the ISO. Users are computed from the VMs' specs, so a
crash anywhere leaves nothing to repair. A namespace being deleted never waits for it: the ISO is
released there (other namespaces' VMs keep their own copies), and deleting the finalizer by hand
always releases an ISO.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..api.conditions import Condition, ConditionStatus, merge_conditions
from ..api.crd import GROUP, VERSION
from ..api.durations import parse_duration
from ..api.iso import IsoPhase, ISOSpec, ISOStatus
from ..api.settings import Settings
from ..builders.iso import (
    CDI,
    DOWNLOAD_ANNOTATION,
    FAILED_READS_ANNOTATION,
    FINALIZER,
    build_import,
    download_mark,
    download_of,
    import_name,
    iso_users,
)
from ..kube import Kube
from ..status.iso import READY, GiveUp, IsoObserved, iso_status, started, still_failed
from ..urlguard import ReadFailed, UrlRefused, UrlRules, checked_addresses, read_url
from .base import Controller, Key, one

log = logging.getLogger(__name__)
PLURAL = "isos"
API_VERSION = f"{GROUP}/{VERSION}"
HELD_RECHECK_SECONDS = 60.0  # while a deletion is held: is the namespace being deleted meanwhile?


def read_backoff(failures: int) -> float:
    """The wait before reading a failing URL again: as CDI's importer restarts (10 s doubling, cap 5 min)."""
    return min(10.0 * 2 ** max(failures - 1, 0), 300.0)


@dataclass
class Read:
    """The operator's read of one ISO's URL (in memory: a restart reads again)."""

    uid: str
    failures: int = 0
    size: int | None = None
    digest: str | None = None
    error: str | None = None
    refusal: str | None = None
    retry_at: float = 0.0
    task: asyncio.Task | None = None


class IsoController(Controller):
    name = "iso"
    plural = PLURAL

    def __init__(self, kube: Kube, settings: Settings) -> None:
        super().__init__(kube)
        self.settings = settings
        self.rules = UrlRules.from_settings(settings.isoUrlRules)
        self.give_up = GiveUp(settings.isoImport.maxAttempts, parse_duration(settings.isoImport.failAfter))
        self._reads: dict[Key, Read] = {}

    def primary_index(self) -> Any:
        return self.indexes["isos"]

    async def reconcile(self, key: Key) -> None:
        iso = self.fresh(key, one(self.indexes["isos"], key))
        if iso is None:
            self._forget(key)
            return
        meta = iso["metadata"]
        users = iso_users(self.indexes["vms"], key[0], key[1], bool((iso.get("spec") or {}).get("public")))
        if meta.get("deletionTimestamp"):
            await self._finish_deletion(key, iso, users)
            return
        finalizers = meta.get("finalizers") or []
        if FINALIZER not in finalizers:
            # Before anything is imported; the change's event runs this again.
            await self.kube.set_finalizers(API_VERSION, PLURAL, iso, [*finalizers, FINALIZER])
            return
        spec = ISOSpec.model_validate(iso["spec"])
        previous = ISOStatus.model_validate(iso.get("status") or {})
        generation = meta.get("generation", 1)
        now = datetime.now(UTC)
        data_volume = one(self.indexes["imports"], key)
        if spec.retryRequestedAt is not None and spec.retryRequestedAt != previous.lastRetriedAt:
            if previous.phase is IsoPhase.FAILED:  # a new download, with a new start (the old DataVolume goes below)
                self._forget(key)
                retried = ISOStatus(lastRetriedAt=spec.retryRequestedAt)
                await self.write_status(iso, started(generation, retried, users, now))
                return
            previous = previous.model_copy(update={"lastRetriedAt": spec.retryRequestedAt})  # nothing to retry
        if previous.phase is IsoPhase.FAILED:
            await self._stop_import(key, data_volume)  # once Failed is recorded: a stale read cannot recreate it
            await self.write_status(iso, still_failed(generation, previous, users))
            return
        if previous.startedAt is None:  # recorded before anything is created: DataVolumes are marked with it
            await self.write_status(iso, started(generation, previous, users, now))
            return
        if data_volume is not None and download_of(data_volume) != previous.startedAt:
            await self._stop_import(key, data_volume)  # an earlier download's (failed, retried): its event reruns this
            return
        await self.write_status(iso, await self._import(key, iso, spec, previous, data_volume, users, now))

    async def _import(
        self,
        key: Key,
        iso: dict,
        spec: ISOSpec,
        previous: ISOStatus,
        data_volume: dict | None,
        users: list[str],
        now: datetime,
    ) -> ISOStatus:
        namespace, name = key
        refusal = None
        if data_volume is None:
            try:
                await checked_addresses(spec.url, self.rules)
            except UrlRefused as error:
                refusal = str(error)
            except ReadFailed:
                pass  # the read below reports it, and retries
        need_size = data_volume is None and previous.size is None
        need_digest = bool(spec.checksum) and previous.verifiedChecksum != spec.checksum
        read = None
        if refusal is None and (need_size or need_digest):
            read = self._read(key, iso["metadata"]["uid"], spec, previous, data_volume, need_digest)
        before_import = int(
            ((data_volume or {}).get("metadata", {}).get("annotations") or {}).get(FAILED_READS_ANNOTATION, 0)
        )
        size = read.size if read and read.size is not None else (int(previous.size) if previous.size else None)
        observed = IsoObserved(
            started_at=previous.startedAt,
            users=users,
            data_volume=data_volume,
            size=size,
            digest=read.digest if read else None,
            read_error=read.error if read else None,
            failed_reads=before_import + (read.failures if read else 0),
            refusal=refusal or (read.refusal if read else None),
        )
        status = iso_status(iso["metadata"].get("generation", 1), spec, observed, previous, self.give_up, now)
        if status.phase is not IsoPhase.FAILED and data_volume is None and size is not None:
            body = build_import(
                name, namespace, iso["metadata"]["uid"], spec.url, size, self.settings.defaultStorageClass
            )
            body["metadata"]["annotations"] = {
                FAILED_READS_ANNOTATION: str(read.failures if read else 0),
                DOWNLOAD_ANNOTATION: download_mark(previous.startedAt),
            }
            await self.kube.create_custom(body, "datavolumes")
        if status.phase is IsoPhase.READY:
            self._forget(key)
        return status

    def _read(
        self, key: Key, uid: str, spec: ISOSpec, previous: ISOStatus, data_volume: dict | None, digest: bool
    ) -> Read:
        """The read of the URL, started (or started again after its back-off) when needed."""
        read = self._reads.get(key)
        if read is None or read.uid != uid:
            self._forget(key)
            # Failures before the import began survive a restart in the status; after it, on the DataVolume.
            read = self._reads[key] = Read(uid, failures=0 if data_volume else previous.failedAttempts or 0)
        loop = asyncio.get_running_loop()
        finished = read.refusal is not None or (read.size is not None and (read.digest is not None or not digest))
        if read.task is None and not finished and loop.time() >= read.retry_at:
            algorithm = spec.checksum.split(":", 1)[0] if digest and spec.checksum else None
            read.task = asyncio.create_task(self._run_read(key, read, spec.url, algorithm), name=f"read-{key}")
        return read

    async def _run_read(self, key: Key, read: Read, url: str, algorithm: str | None) -> None:
        try:
            result = await read_url(url, self.rules, algorithm, self.kube.api.user_agent)
            read.size, read.digest, read.error = result.size, result.digest, None
        except UrlRefused as error:
            read.refusal = str(error)
        except Exception as error:  # noqa: BLE001 - ReadFailed, or anything unforeseen: a failure, with back-off
            read.failures += 1
            read.error = str(error)
            delay = read_backoff(read.failures)
            read.retry_at = asyncio.get_running_loop().time() + delay
            self.queue.add_after(key, delay)
        finally:
            read.task = None
            self.queue.add(key)

    async def _stop_import(self, key: Key, data_volume: dict | None) -> None:
        """A failed or retried import: its DataVolume goes (CDI would retry it forever), its read is forgotten."""
        self._forget(key)
        if data_volume is not None and not data_volume["metadata"].get("deletionTimestamp"):
            await self.kube.delete_custom(CDI, "datavolumes", key[0], import_name(key[1]))

    def _forget(self, key: Key) -> None:
        read = self._reads.pop(key, None)
        if read is not None and read.task is not None:
            read.task.cancel()

    async def _finish_deletion(self, key: Key, iso: dict, users: list[str]) -> None:
        """Release the ISO once no VM uses it, or at once when its namespace is being deleted."""
        finalizers = iso["metadata"].get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        self._forget(key)
        if users and not await self.kube.namespace_terminating(key[0]):
            previous = ISOStatus.model_validate(iso.get("status") or {})
            generation = iso["metadata"].get("generation", 1)
            held = Condition(
                type=READY,
                status=ConditionStatus.FALSE,
                reason="DeletionHeld",
                message=f"deletion waits until no VM uses the ISO: {', '.join(users)} (detach it or delete them)",
                observedGeneration=generation,
                lastTransitionTime=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            status = previous.model_copy(
                update={"usedBy": users, "conditions": merge_conditions(previous.conditions, [held])}
            )
            await self.write_status(iso, status)
            self.queue.add_after(key, HELD_RECHECK_SECONDS)
            return
        await self.kube.set_finalizers(API_VERSION, PLURAL, iso, [f for f in finalizers if f != FINALIZER])
