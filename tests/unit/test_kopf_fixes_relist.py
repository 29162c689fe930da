"""The watch-stream repairs: deletions a new listing reveals are reported once; objects come without bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kopf._cogs.clients import watching
from virtstack.kopf_fixes import relist, slim


def vm(name: str, uid: str, **metadata: Any) -> dict:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "7", **metadata},
        "spec": {"runStrategy": "Always", "template": {"spec": {"domain": {}}}},
    }


def listed(*bodies: dict) -> list:
    return [*({"type": None, "object": body} for body in bodies), watching.Bookmark.LISTED]


def test_a_listing_reports_the_objects_it_no_longer_holds_as_deleted() -> None:
    reported = relist.Reported()
    owner = [{"apiVersion": "virtstack.io/v1alpha1", "kind": "VirtualMachine", "name": "a", "uid": "u-owner"}]
    for event in [
        {"type": None, "object": vm("a", "u-a", labels={"virtstack.io/vm": "a"}, ownerReferences=owner)},
        {"type": None, "object": vm("b", "u-b")},
    ]:
        reported.saw(event)
    assert reported.listing_ended() == [], "nothing was reported before the first listing"
    reported.saw({"type": "ADDED", "object": vm("c", "u-c")})
    reported.saw({"type": "DELETED", "object": vm("b", "u-b")})

    reported.listing_started()  # the watch expired (410): kopf lists again; a and c were deleted meanwhile
    reported.saw({"type": None, "object": vm("d", "u-d")})
    gone = reported.listing_ended()

    assert sorted(event["object"]["metadata"]["name"] for event in gone) == ["a", "c"]
    assert {event["type"] for event in gone} == {"DELETED"}
    a = next(event["object"] for event in gone if event["object"]["metadata"]["name"] == "a")
    assert a == {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": "a",
            "namespace": "ns",
            "uid": "u-a",
            "labels": {"virtstack.io/vm": "a"},
            "ownerReferences": [{"apiVersion": "virtstack.io/v1alpha1", "kind": "VirtualMachine", "name": "a"}],
        },
    }, "what the indexes and handlers route by, and nothing else"
    reported.listing_started()
    reported.saw({"type": None, "object": vm("d", "u-d")})
    assert reported.listing_ended() == [], "each deletion is reported once"


def test_a_listing_cut_short_reports_nothing_and_the_next_full_one_does() -> None:
    reported = relist.Reported()
    for body in (vm("a", "u-a"), vm("b", "u-b")):
        reported.saw({"type": None, "object": body})
    reported.listing_ended()
    reported.listing_started()
    reported.saw({"type": None, "object": vm("a", "u-a")})  # the connection broke here: no LISTED
    reported.listing_started()
    assert [e["object"]["metadata"]["name"] for e in reported.listing_ended()] == ["a", "b"]


def test_kopf_streams_carry_the_deletions_between_a_listing_and_its_end(monkeypatch) -> None:
    """Through kopf's own infinite_watch: a first listing, a watch, a 410 and a second listing."""
    listings = [listed(vm("a", "u-a"), vm("b", "u-b")), listed(vm("b", "u-b"))]

    async def scripted(**_: Any) -> AsyncIterator[Any]:
        for event in listings.pop(0):
            yield event  # then the stream ends, as kopf's does on 410 Gone

    monkeypatch.setattr(watching, "continuous_watch", relist.reporting_deletions(scripted))

    async def first_events(count: int) -> list:
        events = []
        settings = type("Settings", (), {"watching": type("Watching", (), {"reconnect_backoff": 0})()})()
        stream = watching.infinite_watch(settings=settings, resource="vms", namespace=None)
        async for event in stream:
            events.append(event)
            if len(events) == count:
                await stream.aclose()
                return events
        return events

    events = asyncio.run(first_events(6))
    kinds = [e if isinstance(e, watching.Bookmark) else (e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert kinds == [
        (None, "a"),
        (None, "b"),
        watching.Bookmark.LISTED,
        (None, "b"),
        ("DELETED", "a"),
        watching.Bookmark.LISTED,
    ]


def test_objects_reach_kopf_without_the_api_servers_bookkeeping() -> None:
    body = vm("web", "u-1", labels={"virtstack.io/vm": "web"})
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    body["metadata"]["annotations"] = {slim.LAST_APPLIED: '{"spec": {}}', "virtstack.io/applied-hash": "abc"}

    async def one_event(**_: Any) -> AsyncIterator[Any]:
        yield {"type": "MODIFIED", "object": body}
        yield watching.Bookmark.LISTED

    async def received() -> list:
        return [event async for event in slim.without_bookkeeping(one_event)()]

    event, bookmark = asyncio.run(received())
    assert event["object"]["metadata"] == {
        "name": "web",
        "namespace": "ns",
        "uid": "u-1",
        "resourceVersion": "7",
        "labels": {"virtstack.io/vm": "web"},
        "annotations": {"virtstack.io/applied-hash": "abc"},
    }
    assert bookmark is watching.Bookmark.LISTED
    lone = {"metadata": {"name": "x", "annotations": {slim.LAST_APPLIED: "{}"}}}
    slim.strip(lone)
    assert lone == {"metadata": {"name": "x"}}
