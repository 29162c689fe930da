"""An Event for each request carried out, as CloudStack records VM.MIGRATE and VM.RESTORE (pure)."""

from __future__ import annotations

from datetime import datetime

from ..api.conditions import condition_in
from ..api.virtualmachine import VirtualMachineStatus
from .migration import MIGRATING


def request_events(previous: VirtualMachineStatus, current: VirtualMachineStatus) -> list[tuple[str, str, str]]:
    """(type, reason, note) for each request the new status records as carried out; none on a rerun."""
    events = []
    if current.lastMigratedAt is not None and current.lastMigratedAt != previous.lastMigratedAt:
        migrating = condition_in(current.conditions, MIGRATING)
        done = migrating.message if migrating is not None else "live-migrated"
        note = f"{done}; spec.migration.requestedAt {_at(current.lastMigratedAt)}"
        events.append(("Normal", "Migrated", note))
    if current.lastReinstalledAt is not None and current.lastReinstalledAt != previous.lastReinstalledAt:
        note = f"root disk recreated from spec.source (spec.reinstallRequestedAt {_at(current.lastReinstalledAt)})"
        events.append(("Normal", "Reinstalled", note))
    return events


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
