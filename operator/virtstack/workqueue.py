"""A keyed work queue: the controller-runtime pattern behind every level-triggered reconcile.

Keys are deduplicated while queued, one worker handles a key at a time (a key added while it is
being handled runs again afterwards), and failures retry with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

from kubernetes_asyncio.client.exceptions import ApiException

from .logs import reconciling
from .metrics import RECONCILE_DURATION, RECONCILE_ERRORS

log = logging.getLogger(__name__)

Key = Hashable


class WorkQueue:
    """Deduplicated keys, one worker per key at a time, retries with capped exponential backoff."""

    max_delay = 300.0

    def __init__(self, name: str, sync: Callable[[Key], Awaitable[None]], workers: int = 8) -> None:
        self.name = name
        self.sync = sync
        self.workers = workers
        RECONCILE_ERRORS.labels(name)  # exported as 0 from the start, so rate() and alerts see the series
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._dirty: set[Key] = set()
        self._failures: dict[Key, int] = {}

    def add(self, key: Key) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Key, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self.add, key)

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            started = time.monotonic()
            with reconciling(self.name, key):  # every line logged meanwhile names the object
                try:
                    await self.sync(key)
                    self._failures.pop(key, None)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - a controller must survive any one object's failure
                    RECONCILE_ERRORS.labels(self.name).inc()
                    failures = self._failures[key] = self._failures.get(key, 0) + 1
                    delay = min(0.05 * 2**failures, self.max_delay)
                    if not (isinstance(error, ApiException) and error.status == 409):
                        log.warning("%s %s failed (%s), retry in %.1fs", self.name, key, _describe(error), delay)
                    self.add_after(key, delay)
                finally:
                    RECONCILE_DURATION.labels(self.name).observe(time.monotonic() - started)
                    self._active.discard(key)
                    if key in self._dirty:
                        self._dirty.discard(key)
                        self.add(key)


def _describe(error: Exception) -> str:
    """One line: an API error's status and message, not its headers."""
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}: {str(error.body)[:300]}"
    return repr(error)
