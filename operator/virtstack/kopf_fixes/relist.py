"""Deletions a watch missed, reported when the kind is listed again.

When a watch cannot go on from its resource version (410 Gone: after an outage of the API server
or of the connection, or behind a busy watch cache), kopf lists the kind again and watches from
there. An object deleted before that listing is simply missing from it: kopf sends no DELETED
event for it, so it stays in kopf's indexes for good, and every reconcile reading them keeps
seeing it (a deleted KubeVirt VM is never made again; a deleted VirtualMachine's KubeVirt VM is
applied again and again, and collected again and again). client-go's informers replace their
store with each listing for this reason. Here each watch stream remembers the objects it has
reported, and when a listing ends it reports DELETED for each one the listing no longer holds,
with the identity last seen: name, namespace, uid, labels and owners (kind and name), which is
what the indexes and the event handlers find an object's VM by.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

# What is remembered of an object, in tuples of interned strings (tens of thousands are held):
# apiVersion, kind, name, namespace, labels as (key, value) pairs, owners as (apiVersion, kind, name).
Identity = tuple[str, str, str, str | None, tuple[tuple[str, str], ...], tuple[tuple[str, str, str], ...]]


def _interned(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def identity(body: dict) -> Identity:
    metadata = body.get("metadata") or {}
    labels = tuple((sys.intern(k), _interned(v)) for k, v in (metadata.get("labels") or {}).items())
    owners = tuple(
        (_interned(ref.get("apiVersion")), _interned(ref.get("kind")), _interned(ref.get("name")))
        for ref in metadata.get("ownerReferences") or []
    )
    return (
        _interned(body.get("apiVersion")),
        _interned(body.get("kind")),
        _interned(metadata.get("name")),
        _interned(metadata.get("namespace")),
        labels,
        owners,
    )


def deleted(uid: str, remembered: Identity) -> dict:
    """A DELETED event for an object of which only its identity is known."""
    api_version, kind, name, namespace, labels, owners = remembered
    metadata: dict[str, Any] = {"name": name, "uid": uid}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if owners:
        metadata["ownerReferences"] = [{"apiVersion": a, "kind": k, "name": n} for a, k, n in owners]
    return {"type": "DELETED", "object": {"apiVersion": api_version, "kind": kind, "metadata": metadata}}


class Reported:
    """The objects one watch stream has reported present and not yet reported deleted."""

    def __init__(self) -> None:
        self.objects: dict[str, Identity] = {}  # uid -> identity
        self.listed: set[str] = set()  # uids of the listing under way

    def listing_started(self) -> None:
        self.listed = set()

    def saw(self, event: dict) -> None:
        body = event.get("object") or {}
        uid = (body.get("metadata") or {}).get("uid")
        if uid is None:  # a BOOKMARK carries no object
            return
        if event["type"] == "DELETED":
            self.objects.pop(uid, None)
            return
        if event["type"] is None:  # kopf's mark of an object listed
            self.listed.add(uid)
        self.objects[uid] = identity(body)

    def listing_ended(self) -> list[dict]:
        """DELETED events for the objects reported before that this listing did not hold."""
        gone = [uid for uid in self.objects if uid not in self.listed]
        self.listed = set()
        return [deleted(uid, self.objects.pop(uid)) for uid in gone]


def reporting_deletions(watch: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """kopf's continuous_watch (one listing, then the watch after it), with the deletions each listing reveals."""
    streams: dict[tuple[Any, str | None], Reported] = {}  # (resource, namespace) -> what it reported

    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        reported = streams.setdefault((kwargs["resource"], kwargs["namespace"]), Reported())
        reported.listing_started()
        async for event in watch(**kwargs):
            if event is watching.Bookmark.LISTED:
                for gone in reported.listing_ended():
                    yield gone
            elif isinstance(event, dict):
                reported.saw(event)
            yield event

    return continuous_watch
