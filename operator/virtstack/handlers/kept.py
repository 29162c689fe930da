"""What the indexes keep of a watched object: what the reconciles read, less the API server's bookkeeping.

`managedFields` and kubectl's last-applied copy are often most of an object's size, and no
reconcile reads them; with thousands of VMs, each held in several indexes, they would be most of
the operator's memory.
"""

from __future__ import annotations

import copy

import kopf

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def metadata(body: kopf.Body) -> dict:
    meta = {key: copy.deepcopy(value) for key, value in body["metadata"].items() if key != "managedFields"}
    if LAST_APPLIED in (meta.get("annotations") or {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    return meta


def whole(body: kopf.Body) -> dict:
    """A deep copy of the object, its metadata kept as above."""
    return {
        **{key: copy.deepcopy(value) for key, value in body.items() if key != "metadata"},
        "metadata": metadata(body),
    }
