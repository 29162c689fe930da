"""Indexes that only the metrics read: the phase of every VMSnapshot, from its status."""

from __future__ import annotations

from typing import Any

import kopf

from ..api.crd import GROUP, VERSION


@kopf.index(GROUP, VERSION, "vssnapshots")
async def snapshot_phases(namespace: str, name: str, status: kopf.Status, **_: Any) -> dict:
    return {(namespace, name): status.get("phase")}
