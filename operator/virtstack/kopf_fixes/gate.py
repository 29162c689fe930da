"""kopf's start-up gate for indexes, made linear in the number of objects.

While kopf first lists the cluster, every object of an indexed kind holds a toggle in one
`ToggleSet`, and every object worker waits on that set until all toggles are gone. kopf 1.45.2
wakes every waiter each time a toggle is added or dropped, so a start with N objects costs N x N
wake-ups: 13.5 s for 1,000 VMs, 141.5 s for 3,000, and none reconciled in 28 minutes for 10,000
(bench/RESULTS.md). A waiter only waits for the set's overall state (`is_on()`), so waking them
when that state did not change is wasted work: here a toggle added or dropped wakes the waiters
only when it changes the set's state.
"""

from __future__ import annotations

from collections.abc import Iterable

from kopf._cogs.aiokits.aiotoggles import Toggle, ToggleSet  # the class kopf's gate is made of


async def make_toggle(self: ToggleSet, value: bool = False, *, name: str | None = None) -> Toggle:
    toggle = Toggle(value, name=name, condition=self._condition)
    async with self._condition:
        before = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != before:
            self._condition.notify_all()
    return toggle


async def drop_toggle(self: ToggleSet, toggle: Toggle) -> None:
    await drop_toggles(self, (toggle,))


async def drop_toggles(self: ToggleSet, toggles: Iterable[Toggle]) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> None:
    ToggleSet.make_toggle = make_toggle
    ToggleSet.drop_toggle = drop_toggle
    ToggleSet.drop_toggles = drop_toggles
