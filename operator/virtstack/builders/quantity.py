"""Quantities: extended resources in whole units ("2", "2k" from a device plugin), memory in bytes."""

from __future__ import annotations

_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6}


def whole_units(value: str) -> int:
    text = str(value).strip()
    suffix = text[-1] if text and text[-1] in _SUFFIXES else ""
    return int(text[: len(text) - len(suffix)] or 0) * _SUFFIXES[suffix]


_BYTES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def bytes_of(value: str) -> int:
    """A memory quantity in bytes ("4Gi", "4096Mi", "4294967296"), to compare sizes written differently."""
    text = str(value).strip()
    for suffix in sorted(_BYTES, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _BYTES[suffix])
    return int(float(text))
