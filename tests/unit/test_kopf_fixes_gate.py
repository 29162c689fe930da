"""kopf's index gate with the fix: it still opens only when every toggle is gone, in linear wake-ups."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits.aiotoggles import ToggleSet
from virtstack import kopf_fixes

OBJECTS = 300


async def open_gate_counting_checks(objects: int) -> tuple[int, list[bool]]:
    """As kopf starts: a toggle per listed object, a waiter per object, each object dropping its toggle."""
    gate = ToggleSet(all)
    checks = 0
    is_on = gate.is_on

    def counted() -> bool:
        nonlocal checks
        checks += 1
        return is_on()

    gate.is_on = counted  # what every waiter's wake-up evaluates
    toggles = [await gate.make_toggle(name=str(n)) for n in range(objects)]
    waiters = [asyncio.create_task(gate.wait_for(True)) for _ in range(objects)]
    await asyncio.sleep(0)
    opened_early = []
    for toggle in toggles:
        await gate.drop_toggle(toggle)
        await asyncio.sleep(0)
        opened_early.append(any(w.done() for w in waiters) and toggle is not toggles[-1])
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    return checks, opened_early


def test_the_gate_opens_after_the_last_toggle_and_wakes_its_waiters_a_linear_number_of_times() -> None:
    kopf_fixes.install()
    checks, opened_early = asyncio.run(open_gate_counting_checks(OBJECTS))
    assert not any(opened_early), "no waiter passes while a toggle is left"
    assert checks <= 6 * OBJECTS, f"{checks} checks of the gate for {OBJECTS} objects (kopf alone: about N x N)"


def test_a_paused_set_still_wakes_its_waiters_when_it_changes() -> None:
    """The same class pauses kopf (`any`): a toggle added switched on pauses it, dropped resumes it."""
    kopf_fixes.install()

    async def pause_and_resume() -> bool:
        paused = ToggleSet(any)
        toggle = await paused.make_toggle(True, name="peering")
        resumed = asyncio.create_task(paused.wait_for(False))
        await asyncio.sleep(0)
        assert not resumed.done()
        await paused.drop_toggle(toggle)
        await asyncio.wait_for(resumed, timeout=5)
        return paused.is_off()

    assert asyncio.run(pause_and_resume())
