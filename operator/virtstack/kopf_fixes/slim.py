"""Watched objects reach kopf without the API server's bookkeeping.

kopf holds each object as it arrived: every listed object at once while the start-up listing is
indexed (see `gate`), and each object while its handlers run. `managedFields` and kubectl's
last-applied copy are often most of an object's size, and nothing in the operator reads them:
dropping them as each event arrives lowers that peak, and nothing downstream (indexes, handlers,
logs) ever holds them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip(body: dict) -> None:
    """Drop the bookkeeping from a freshly parsed object, in place (no copy: it is kopf's alone)."""
    metadata = body.get("metadata") or {}
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations") or {}
    annotations.pop(LAST_APPLIED, None)
    if "annotations" in metadata and not annotations:
        del metadata["annotations"]


def without_bookkeeping(watch: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        async for event in watch(**kwargs):
            if isinstance(event, dict) and isinstance(event.get("object"), dict):
                strip(event["object"])
            yield event

    return continuous_watch
