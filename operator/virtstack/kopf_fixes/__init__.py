"""Two repairs to kopf, which the operator cannot work around from outside it.

- `gate`: kopf's start-up gate for indexes costs N x N wake-ups for N objects listed.
- `relist`: objects deleted while a watch was down stay in kopf's indexes for good.

Both replace kopf internals, so kopf is pinned in pyproject.toml and `install()` refuses any other
version: a kopf upgrade must review them (and drop those kopf has fixed).
"""

from __future__ import annotations

from importlib.metadata import version

from . import gate, relist

WRITTEN_FOR = "1.45.2"


def install() -> None:
    installed = version("kopf")
    if installed != WRITTEN_FOR:
        raise RuntimeError(f"kopf {installed}: the repairs here are written for kopf {WRITTEN_FOR}; review them")
    gate.install()
    relist.install()
