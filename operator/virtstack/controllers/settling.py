"""Hold back a status that only says "on the way": at most one such write per VM per hold.

Without it every create costs a status write per step KubeVirt passes through (Creating, Starting
with no host, Starting on a host, Running). A VM that reaches Running within the hold gets one
status write; a slow one gets its progress at most once per hold. Only statuses that report
progress are held, and only while they describe the generation the stored status already
describes: a problem, an arrival and the first answer to a spec change are written at once. A
crash forgets the clocks: the held status is written one hold after the restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

HOLD_SECONDS = 5.0


class ProgressHold:
    """When each key's hold began (its first progress, or its last progress write); how long a write waits."""

    def __init__(self, seconds: float = HOLD_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._since: dict[Hashable, float] = {}

    def wait(self, key: Hashable, holdable: bool) -> float | None:
        """Seconds until a holdable status may be written; None to write now (a progress write starts a new hold)."""
        if not holdable:
            self._since.pop(key, None)
            return None
        now = self.clock()
        left = self._since.setdefault(key, now) + self.seconds - now
        if left > 0:
            return left
        self._since[key] = now
        return None

    def forget(self, key: Hashable) -> None:
        self._since.pop(key, None)
