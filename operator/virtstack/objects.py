"""Pure reads and comparisons of Kubernetes objects: conditions, and what keeps a reconcile from writing."""

from __future__ import annotations

import hashlib
import json
from typing import Any

APPLIED_HASH = "virtstack.io/applied-hash"


def stamped(desired: dict) -> dict:
    """The object with a hash of itself: a later desired object without a field we used to set hashes
    differently, so the apply that removes the field is not skipped."""
    digest = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()[:16]
    metadata = {
        **desired["metadata"],
        "annotations": {**desired["metadata"].get("annotations", {}), APPLIED_HASH: digest},
    }
    return {**desired, "metadata": metadata}


def needs_apply(desired: dict, actual: dict | None) -> bool:
    """Apply when the stamped desired object differs from the last one applied, or a field we own drifted."""
    return actual is None or not is_subset(stamped(desired), actual)


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field we set has the value we set; fields others (or defaults) add are ignored."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(is_subset(value, actual.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return desired == actual


def merge_patch(current: dict, desired: dict, keep: tuple[str, ...] = ()) -> dict:
    """An RFC 7386 merge patch turning `current` into `desired` (null removes); empty when equal.

    Keys in `keep` belong to other writers and are left alone.
    """
    patch: dict = {}
    for key in current.keys() - desired.keys() - set(keep):
        patch[key] = None
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif value != old:
            patch[key] = value
    return patch


def condition_of(obj: dict | None, kind: str) -> dict | None:
    """The condition of this type in an object's `status.conditions` (KubeVirt's, CDI's, a Pod's), if any."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)
