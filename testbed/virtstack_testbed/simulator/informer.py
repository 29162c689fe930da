"""LIST+WATCH caches: the client-go informer pattern KubeVirt's controllers use.

Python has no maintained informer library (kopf is a handler framework, and it annotates the
objects it handles, which KubeVirt never does), so this is the small piece the simulator keeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


def object_key(obj: dict) -> Key:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@dataclass(frozen=True)
class Resource:
    """A resource addressed by its REST path, so core and custom kinds are listed the same way."""

    group: str
    version: str
    plural: str

    def collection_path(self) -> str:
        prefix = "/api/v1" if self.group == "" else f"/apis/{self.group}/{self.version}"
        return f"{prefix}/{self.plural}"


class Informer:
    """Keeps `cache` equal to the server's objects of one resource and reports every change."""

    def __init__(
        self,
        api: client.ApiClient,
        resource: Resource,
        on_change: Callable[[dict | None, dict | None], None],
        label_selector: str | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.on_change = on_change
        self.label_selector = label_selector
        self.cache: dict[Key, dict] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                resource_version = await self._relist()
                backoff = 0.5
                await self._watch(resource_version)
            except asyncio.CancelledError:
                raise
            except ApiException as error:
                if error.status != 410:
                    log.warning("watch %s failed: %s %s", self.resource.plural, error.status, error.reason)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10)
            except (TimeoutError, OSError, ValueError, aiohttp.ClientError) as error:  # e.g. an API server restart
                log.warning("watch %s broke: %r; relisting", self.resource.plural, error)
                await asyncio.sleep(backoff + random.random())
                backoff = min(backoff * 2, 10)

    async def _relist(self) -> str:
        body = await self._list_all()
        fresh = {object_key(obj): obj for obj in body["items"]}
        previous, self.cache = self.cache, fresh
        for key, obj in fresh.items():
            if previous.get(key, {}).get("metadata", {}).get("resourceVersion") != obj["metadata"]["resourceVersion"]:
                self.on_change(previous.get(key), obj)
        for key in previous.keys() - fresh.keys():
            self.on_change(previous[key], None)
        self.synced.set()
        return body["metadata"]["resourceVersion"]

    async def _watch(self, resource_version: str) -> None:
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(240 + random.randint(0, 60)),
        }
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        response = await self._request(params)
        async with response:
            if response.status != 200:
                body = await response.text()
                raise ApiException(status=response.status, reason=body[:300])
            async for line in _lines(response.content):
                event = json.loads(line)
                if "type" not in event or "object" not in event:
                    # Not a watch event: a Status the server ends the stream with.
                    raise ApiException(status=event.get("code", 500), reason=str(event.get("message", event))[:300])
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                if kind == "BOOKMARK":
                    continue
                key = object_key(obj)
                old = self.cache.get(key)
                if kind == "DELETED":
                    self.cache.pop(key, None)
                    self.on_change(old, None)
                else:
                    self.cache[key] = obj
                    self.on_change(old, obj)

    async def _list_all(self) -> dict:
        params = {"limit": "500"}
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        items: list[dict] = []
        while True:
            response = await self._request(params)
            async with response:
                if response.status != 200:  # e.g. 429 while a restarted API server fills its caches
                    raise ApiException(status=response.status, reason=(await response.text())[:300])
                body = await response.json()
            items.extend(body.get("items", []))
            token = body["metadata"].get("continue")
            if not token:
                body["items"] = items
                return body
            params = {**params, "continue": token}

    async def _request(self, params: dict[str, str]):
        return await self.api.call_api(
            self.resource.collection_path(),
            "GET",
            query_params=list(params.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=None,
        )


async def _lines(stream) -> AsyncIterator[bytes]:
    """Newline-delimited watch events of any length (aiohttp's line iterator stops at 64 KiB)."""
    buffer = b""
    async for chunk in stream.iter_any():
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer
