"""What the indexes keep of a watched object: what the reconciles read, less the API server's bookkeeping.

`managedFields` and kubectl's last-applied copy are often most of an object's size, and no
reconcile reads them; with thousands of VMs, each held in several indexes, they would be most of
the operator's memory. What is kept is copied with its strings interned: every object repeats the
same keys and most of the same values (API versions, condition types, labels), which would
otherwise be held once per object.
"""

from __future__ import annotations

import sys
from typing import Any

import kopf

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
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
    meta = {key: value for key, value in body["metadata"].items() if key != "managedFields"}
    if LAST_APPLIED in (meta.get("annotations") or {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    return compact(meta)


def whole(body: kopf.Body) -> dict:
    """The object, its metadata kept as above."""
    return {**compact({key: value for key, value in body.items() if key != "metadata"}), "metadata": metadata(body)}


def fields(body: kopf.Body, *names: str) -> dict:
    """The metadata kept as above and these top-level fields ({} where absent)."""
    return {"metadata": metadata(body), **{name: compact(body.get(name) or {}) for name in names}}
