"""An ISO's status from its import DataVolume and the operator's own read of the URL (pure).

CDI never fails a DataVolume whose URL keeps failing: its importer restarts with a growing
back-off. The ISO reports the last error while the download is retried, and turns Failed once
the failed attempts (the operator's reads plus CDI's importer restarts) reach
`isoImport.maxAttempts`, or the download has been failing for `isoImport.failAfter` since it
began. Failed stays until a retry is requested (spec.retryRequestedAt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.conditions import Condition, ConditionStatus, merge_conditions
from ..api.iso import IsoPhase, ISOSpec, ISOStatus
from ..objects import condition_of

READY = "Ready"
URL_REFUSED = "UrlRefused"
CHECKSUM_MISMATCH = "ChecksumMismatch"
DOWNLOAD_FAILED = "DownloadFailed"
DOWNLOAD_FAILING = "DownloadFailing"
# Reasons of a VM's Ready condition when an ISO or URL keeps it from being built.
VM_ISO_NOT_READY = "ISONotReady"
VM_ISO_UNUSABLE = "ISOUnusable"
VM_URL_REFUSED = "UrlRefused"


@dataclass(frozen=True)
class IsoObserved:
    """What the controller saw, gathered before computing."""

    started_at: datetime  # when the current download began
    users: list[str]
    data_volume: dict | None = None
    size: int | None = None  # bytes, from the operator's read (Content-Length or bytes counted)
    digest: str | None = None  # "<algorithm>:<hex>" of the operator's full read, once done
    read_error: str | None = None  # the operator's last read failed with this (retried)
    failed_reads: int = 0  # the operator's failed reads so far, this download
    refusal: str | None = None  # the SSRF guard refused the URL (or a redirect)


@dataclass(frozen=True)
class GiveUp:
    max_attempts: int
    fail_after: float  # seconds


def _condition(status: bool, reason: str, message: str, generation: int, now: datetime) -> Condition:
    return Condition(
        type=READY,
        status=ConditionStatus.TRUE if status else ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observedGeneration=generation,
        lastTransitionTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def importer_error(data_volume: dict | None) -> str | None:
    """CDI's importer error while it retries (Running=False, reason Error)."""
    running = condition_of(data_volume, "Running")
    if running and running.get("status") == "False" and running.get("reason") == "Error":
        return running.get("message") or "the importer failed"
    return None


def failed(
    generation: int, reason: str, message: str, previous: ISOStatus, users: list[str], now: datetime
) -> ISOStatus:
    return previous.model_copy(
        update={
            "phase": IsoPhase.FAILED,
            "progress": None,
            "usedBy": users,
            "observedGeneration": generation,
            "conditions": merge_conditions(previous.conditions, [_condition(False, reason, message, generation, now)]),
        }
    )


def started(generation: int, previous: ISOStatus, users: list[str], now: datetime) -> ISOStatus:
    """A download begins: its start is recorded first (failAfter counts from it; its DataVolume carries it)."""
    pending = _condition(False, "Pending", "waiting for the download to start", generation, now)
    return previous.model_copy(
        update={
            "phase": IsoPhase.PENDING,
            "startedAt": now,
            "usedBy": users,
            "observedGeneration": generation,
            "conditions": merge_conditions(previous.conditions, [pending]),
        }
    )


def still_failed(generation: int, previous: ISOStatus, users: list[str]) -> ISOStatus:
    """A Failed ISO stays Failed until a retry is requested; only who uses it and the generation move."""
    conditions = [c.model_copy(update={"observedGeneration": generation}) for c in previous.conditions]
    return previous.model_copy(update={"usedBy": users, "observedGeneration": generation, "conditions": conditions})


def iso_status(
    generation: int, spec: ISOSpec, observed: IsoObserved, previous: ISOStatus, give_up: GiveUp, now: datetime
) -> ISOStatus:
    """The status for this generation; Failed when the download must not or cannot complete."""
    users = observed.users
    if observed.refusal is not None:
        return failed(generation, URL_REFUSED, f"spec.url is refused: {observed.refusal}", previous, users, now)
    if spec.checksum and observed.digest is not None and observed.digest != spec.checksum:
        return failed(
            generation,
            CHECKSUM_MISMATCH,
            f"the download's checksum is {observed.digest}, spec.checksum expects {spec.checksum}: "
            "correct spec.checksum or the URL, then set spec.retryRequestedAt",
            previous,
            users,
            now,
        )
    dv_status = (observed.data_volume or {}).get("status") or {}
    error = observed.read_error or importer_error(observed.data_volume)
    attempts = observed.failed_reads + int(dv_status.get("restartCount", 0))
    failing_for = (now - observed.started_at).total_seconds()
    if error is not None and (attempts >= give_up.max_attempts or failing_for >= give_up.fail_after):
        return failed(
            generation,
            DOWNLOAD_FAILED,
            f"the download failed {attempts} times in {int(failing_for)}s: {error}. "
            "Fix the URL or its server, then set spec.retryRequestedAt",
            previous,
            users,
            now,
        )
    verified = not spec.checksum or observed.digest == spec.checksum or previous.verifiedChecksum == spec.checksum
    imported = dv_status.get("phase") == "Succeeded"
    progress = dv_status.get("progress") if observed.data_volume is not None else None
    if imported and verified:
        phase, condition = IsoPhase.READY, _condition(True, "Imported", "imported and ready to use", generation, now)
        progress = "100%"
    elif error is not None:
        phase = IsoPhase.DOWNLOADING if observed.data_volume is not None else IsoPhase.PENDING
        condition = _condition(
            False,
            DOWNLOAD_FAILING,
            f"the download failed (attempt {attempts} of {give_up.max_attempts}) and is retried: {error}",
            generation,
            now,
        )
    elif imported:
        phase = IsoPhase.DOWNLOADING
        condition = _condition(False, "Verifying", "imported; verifying spec.checksum", generation, now)
    elif dv_status.get("phase") in ("ImportScheduled", "ImportInProgress"):
        phase = IsoPhase.DOWNLOADING
        condition = _condition(False, "Downloading", f"CDI is importing the ISO ({progress})", generation, now)
    else:
        phase = IsoPhase.PENDING
        condition = _condition(False, "Pending", "waiting for the download to start", generation, now)
    if progress == "N/A":
        progress = None
    size = observed.size if observed.size is not None else (int(previous.size) if previous.size else None)
    return previous.model_copy(
        update={
            "phase": phase,
            "progress": progress,
            "size": str(size) if size is not None else None,
            "usedBy": users,
            "startedAt": observed.started_at,
            "failedAttempts": attempts or None,
            "verifiedChecksum": spec.checksum if spec.checksum and verified else None,
            "observedGeneration": generation,
            "conditions": merge_conditions(previous.conditions, [condition]),
        }
    )
