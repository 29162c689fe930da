"""Extended resources are counted in whole units ("2", "2k" from a device plugin)."""

from __future__ import annotations

_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6}


def whole_units(value: str) -> int:
    text = str(value).strip()
    suffix = text[-1] if text and text[-1] in _SUFFIXES else ""
    return int(text[: len(text) - len(suffix)] or 0) * _SUFFIXES[suffix]
