"""Leader election with a coordination.k8s.io Lease, as client-go and controller-runtime do it.

Every replica watches and indexes (a warm standby); only the holder of the Lease runs the work
queues, so only it writes. The holder renews every RETRY_PERIOD; when it cannot renew for
RENEW_DEADLINE it stops writing at once and exits. A standby takes over once the record it sees
has not changed for the Lease's duration, measured on its own monotonic clock (never by comparing
the holder's timestamps with its own clock, so clock skew between nodes cannot cause two leaders).
A holder that shuts down cleanly releases the Lease, so the next replica takes over at its next try.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger(__name__)

LEASE_ENV = "VIRTSTACK_LEADER_ELECTION_LEASE"
# controller-runtime's defaults: a dead leader is replaced within LEASE_DURATION + RETRY_PERIOD.
LEASE_DURATION = 15
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str


def lease_config() -> LeaseConfig | None:
    """From the environment the chart sets; None (no election: a single operator) without a Lease name."""
    name = os.environ.get(LEASE_ENV)
    if not name:
        return None
    namespace = os.environ.get("POD_NAMESPACE") or (
        SERVICE_ACCOUNT_NAMESPACE.read_text().strip() if SERVICE_ACCOUNT_NAMESPACE.exists() else "default"
    )
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4()}"
    return LeaseConfig(name=name, namespace=namespace, identity=identity)


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim(spec: dict | None, identity: str, now: datetime, expired: bool) -> dict | None:
    """The Lease spec that makes `identity` the holder, or None while another holder's Lease is valid.

    Renewing keeps acquireTime and leaseTransitions; taking over starts a new term.
    """
    spec = spec or {}
    holder = spec.get("holderIdentity") or ""
    if holder and holder != identity and not expired:
        return None
    renewing = holder == identity
    stamp = micro_time(now)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": LEASE_DURATION,
        "acquireTime": spec.get("acquireTime", stamp) if renewing else stamp,
        "renewTime": stamp,
        "leaseTransitions": (spec.get("leaseTransitions") or 0) + (0 if renewing or not holder else 1),
    }


def released(spec: dict, now: datetime) -> dict:
    """What a holder leaves behind on a clean shutdown: no holder, so the next try of any replica wins."""
    stamp = micro_time(now)
    return {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": stamp, "renewTime": stamp}


class Observation:
    """When this replica last saw the Lease record change, on its monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.record: dict | None = None
        self.since = 0.0

    def see(self, spec: dict | None) -> None:
        if spec != self.record:
            self.record, self.since = spec, self.clock()

    def expired(self) -> bool:
        if not self.record or not self.record.get("holderIdentity"):
            return True
        return self.clock() - self.since > (self.record.get("leaseDurationSeconds") or LEASE_DURATION)


class LeaderElector:
    """Campaigns for the Lease, calls `lead` once elected, and returns when leadership is lost."""

    def __init__(self, api: client.ApiClient, config: LeaseConfig) -> None:
        self.config = config
        self.leases = client.CoordinationV1Api(api)
        self.observation = Observation()
        self.leading = False
        self._resource_version: str | None = None
        self._spec: dict | None = None

    async def run(self, lead: Callable[[], None]) -> None:
        """Acquire (retrying forever), start leading, renew until the renew deadline passes without success.

        The deadline counts from when a successful request was sent, not answered: a standby counts its
        lease duration from when it sees the write, which is never earlier, so a slow answer cannot
        carry the holder past the moment a standby may take over.
        """
        while True:
            sent = time.monotonic()
            if await self._try() and time.monotonic() - sent < RENEW_DEADLINE:
                break
            await asyncio.sleep(RETRY_PERIOD)
        renewed = sent
        self.leading = True
        log.info("leading with Lease %s/%s as %s", self.config.namespace, self.config.name, self.config.identity)
        lead()
        while (remaining := RENEW_DEADLINE - (time.monotonic() - renewed)) > 0:
            await asyncio.sleep(min(RETRY_PERIOD, remaining))
            remaining = RENEW_DEADLINE - (time.monotonic() - renewed)
            sent = time.monotonic()
            try:  # a hanging request must not carry the holder past its deadline
                if remaining > 0 and await asyncio.wait_for(self._try(), remaining):
                    renewed = sent
            except TimeoutError:
                pass
        self.leading = False
        log.error("lost the Lease %s/%s: no renewal for %ss", self.config.namespace, self.config.name, RENEW_DEADLINE)

    async def release(self) -> None:
        """Hand the Lease back on a clean shutdown (after the work queues stopped)."""
        if not self.leading or self._spec is None:
            return
        self.leading = False
        body = self._body(released(self._spec, datetime.now(UTC)))
        try:
            await _json(
                self.leases.replace_namespaced_lease(
                    self.config.name, self.config.namespace, body, _preload_content=False
                )
            )
            log.info("released the Lease %s/%s", self.config.namespace, self.config.name)
        except ApiException as error:
            log.warning("could not release the Lease: %s %s", error.status, error.reason)

    async def _try(self) -> bool:
        """One acquire-or-renew attempt; False on any failure (the caller retries)."""
        try:
            return await self._acquire_or_renew()
        except ApiException as error:
            if error.status != 409:  # 409: another replica wrote first; it holds the Lease now
                log.warning("Lease %s/%s: %s %s", self.config.namespace, self.config.name, error.status, error.reason)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            log.warning("Lease %s/%s: %r", self.config.namespace, self.config.name, error)
        return False

    async def _acquire_or_renew(self) -> bool:
        name, namespace = self.config.name, self.config.namespace
        try:
            current = await _json(self.leases.read_namespaced_lease(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status != 404:
                raise
            spec = claim(None, self.config.identity, datetime.now(UTC), expired=True)
            self._remember(
                await _json(self.leases.create_namespaced_lease(namespace, self._body(spec), _preload_content=False))
            )
            return True
        spec = current.get("spec") or {}
        self.observation.see(spec)
        wanted = claim(spec, self.config.identity, datetime.now(UTC), self.observation.expired())
        if wanted is None:
            return False
        self._resource_version = current["metadata"]["resourceVersion"]
        self._remember(
            await _json(
                self.leases.replace_namespaced_lease(name, namespace, self._body(wanted), _preload_content=False)
            )
        )
        return True

    def _remember(self, lease: dict) -> None:
        self._resource_version = lease["metadata"]["resourceVersion"]
        self._spec = lease.get("spec") or {}
        self.observation.see(self._spec)

    def _body(self, spec: dict) -> dict:
        metadata = {"name": self.config.name, "namespace": self.config.namespace}
        if self._resource_version:
            metadata["resourceVersion"] = self._resource_version  # optimistic concurrency: one writer wins
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


async def _json(request: Awaitable) -> dict:
    """The API server's JSON as sent, so MicroTime strings go back exactly as the server wrote them."""
    response = await request
    try:
        text = await response.text()
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        error = ApiException(status=response.status, reason=response.reason)
        error.body = text
        raise error
    return json.loads(text)
