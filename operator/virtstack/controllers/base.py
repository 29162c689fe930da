"""What every controller shares: a work queue of keys, and kopf's indexes bound on the first event."""

from __future__ import annotations

from typing import Any

from ..workqueue import WorkQueue

Key = tuple[str, str]


def one(index: Any, key: Any) -> dict | None:
    """The single object an index holds under a key, if any."""
    store = index.get(key)
    return next(iter(store), None) if store else None


class Controller:
    """Events only queue keys; `reconcile(key)` does the work, level-triggered, one key at a time."""

    name = "controller"

    def __init__(self) -> None:
        self.queue = WorkQueue(self.name, self.reconcile)
        self.indexes: Any = None

    def enqueue(self, key: Key, indexes: Any) -> None:
        self.indexes = indexes
        self.queue.add(key)

    def all_keys(self) -> list[Key]:
        """What the periodic resync requeues."""
        return list(self.primary_index()) if self.indexes is not None else []

    def primary_index(self) -> Any:
        raise NotImplementedError

    async def reconcile(self, key: Key) -> None:
        raise NotImplementedError
