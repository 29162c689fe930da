"""Repairs to kopf, which the operator cannot make from outside it.

- `gate`: kopf's start-up gate for indexes costs N x N wake-ups for N objects listed.
- `relist`: objects deleted while a watch was down stay in kopf's indexes for good.
- `slim`: kopf holds every object with the API server's bookkeeping, which nothing here reads.

They replace kopf internals, so kopf is pinned in pyproject.toml and `install()` refuses any other
version: a kopf upgrade must review them (and drop those kopf has fixed).
"""

from __future__ import annotations

from importlib.metadata import version

from kopf._cogs.clients import watching  # infinite_watch calls this module's continuous_watch

from . import gate, relist, slim

WRITTEN_FOR = "1.45.2"
KOPF_CONTINUOUS_WATCH = watching.continuous_watch


def install() -> None:
    installed = version("kopf")
    if installed != WRITTEN_FOR:
        raise RuntimeError(f"kopf {installed}: the repairs here are written for kopf {WRITTEN_FOR}; review them")
    gate.install()
    watching.continuous_watch = relist.reporting_deletions(slim.without_bookkeeping(KOPF_CONTINUOUS_WATCH))
