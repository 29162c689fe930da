"""Durations as the settings and specs write them: 90s, 3m, 1h30m."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+)(s|m|h)")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    parts = _PART.findall(text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        raise ValueError(f"not a duration like 90s, 3m or 1h30m: {text!r}")
    return float(sum(int(number) * _SECONDS[unit] for number, unit in parts))
