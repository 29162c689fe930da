"""What the indexes keep of a watched object: copies with their strings interned.

With thousands of VMs, each held in several indexes, every object repeats the same keys and most
of the same values (API versions, condition types, labels), which would otherwise be held once
per object. (The API server's bookkeeping never gets this far: see kopf_fixes/slim.py.)
"""

from __future__ import annotations

import sys
from typing import Any

import kopf

# Values that differ in every object or every event: interning them would save nothing (and
# Python 3.12.0 to 3.12.4 never free an interned string).
UNIQUE_VALUES = ("uid", "resourceVersion")
TIME_VALUES = ("Time", "Timestamp")


def compact(value: Any, key: str = "") -> Any:
    """A deep copy of a JSON value whose keys, and values that repeat, are shared with every other copy."""
    if isinstance(value, dict):
        return {sys.intern(name): compact(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [compact(item, key) for item in value]
    if isinstance(value, str) and key not in UNIQUE_VALUES and not key.endswith(TIME_VALUES):
        return sys.intern(value)
    return value


def metadata(body: kopf.Body) -> dict:
    return compact(dict(body["metadata"]))


def whole(body: kopf.Body) -> dict:
    return compact(dict(body))


def fields(body: kopf.Body, *names: str) -> dict:
    """The metadata and these top-level fields ({} where absent)."""
    return {"metadata": metadata(body), **{name: compact(body.get(name) or {}) for name in names}}
