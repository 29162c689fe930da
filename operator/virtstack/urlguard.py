"""The SSRF guard for URLs that CDI's importer fetches from inside the cluster (ISOs, template images).

An importer pod can reach what users cannot: the node's loopback, the cloud's metadata service
(169.254.169.254), private networks and the cluster's own Service and Pod ranges. A URL resolving
into any of them is refused unless an administrator allowed its range (`isoUrlRules.allowedCIDRs`,
like CloudStack's secstorage.allowed.internal.sites); the cluster's ranges are refused even then.

The API server judges literal addresses and names like localhost at admission (api/policies.py);
the operator judges every URL again after resolving its host here, before anything is imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urljoin, urlsplit

import aiohttp
import aiohttp.abc

from .api.settings import IsoUrlRules

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]

# Special-purpose ranges an importer must not reach (RFC 6890 and its updates), and why.
INTERNAL_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this host"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
LOCAL_NAMES = ("localhost",)  # and every name under .localhost (RFC 6761)


class UrlRefused(Exception):
    """The URL must not be imported; the message says why and what to do."""


class ReadFailed(Exception):
    """A read failed in a way a later attempt may not (no such host now, server error, timeout)."""


@dataclass(frozen=True)
class UrlRules:
    allowed: tuple[Network, ...] = ()
    cluster: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, rules: IsoUrlRules) -> UrlRules:
        return cls(tuple(rules.allowedCIDRs), tuple(rules.clusterCIDRs))


_INTERNAL = tuple((ip_network(cidr), why) for cidr, why in INTERNAL_RANGES)


def address_refusal(address: Address, rules: UrlRules) -> str | None:
    """Why the importer must not connect to this address, or None when it may."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for network in rules.cluster:
        if address.version == network.version and address in network:
            return f"{address} is in the cluster's own range {network} (setting isoUrlRules.clusterCIDRs)"
    if any(address.version == n.version and address in n for n in rules.allowed):
        return None
    for network, why in _INTERNAL:
        if address.version == network.version and address in network:
            return (
                f"{address} is a {why} address ({network}): use a public address, or ask an administrator "
                "to allow its range (setting isoUrlRules.allowedCIDRs)"
            )
    return None


def host_of(url: str) -> str:
    """The URL's host, lower-cased, without brackets or a trailing dot; refused when it has none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"{url!r} is not an http or https URL")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused(f"{url!r} names no host")
    return host


async def system_resolver(host: str) -> list[str]:
    """The addresses the operator's resolver gives (the importer's pod resolves through the same cluster DNS)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


async def checked_addresses(url: str, rules: UrlRules, resolve: Resolver = system_resolver) -> list[str]:
    """The addresses the URL's host resolves to, all of them allowed; UrlRefused otherwise.

    Every address must pass: a name with one public and one internal address is refused, as the
    importer may connect to either.
    """
    host = host_of(url)
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        raise UrlRefused(f"{host} is this machine (loopback): use a public address")
    try:
        addresses = await resolve(host)
    except OSError as error:
        raise ReadFailed(f"the host {host} does not resolve: {error}") from error
    except ValueError as error:  # e.g. an empty or over-long label, which the URL check lets through
        raise UrlRefused(f"{host} is not a valid host name ({error}): fix the URL") from error
    refusals = list(_refusals(addresses, rules))
    if refusals:
        raise UrlRefused(f"{host} resolves to {refusals[0]}")
    return addresses


def _refusals(addresses: Iterable[str], rules: UrlRules) -> Iterable[str]:
    for text in addresses:
        reason = address_refusal(ip_address(text.split("%", 1)[0]), rules)
        if reason is not None:
            yield reason


@dataclass
class ReadResult:
    size: int | None = None  # Content-Length, or the bytes counted by a full read
    digest: str | None = None  # "<algorithm>:<hex>" when a full read was asked for


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves and checks in one step, so the connection goes to an address that was checked
    (no DNS rebinding between check and connect). aiohttp skips resolvers for literal addresses:
    those are checked before each request instead."""

    def __init__(self, rules: UrlRules) -> None:
        self.rules = rules
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:
        infos = await self.inner.resolve(host, port, family)
        refusals = list(_refusals((info["host"] for info in infos), self.rules))
        if refusals:
            raise UrlRefused(f"{host} resolves to {refusals[0]}")
        return infos

    async def close(self) -> None:
        await self.inner.close()


MAX_REDIRECTS = 10
CHUNK = 1024 * 1024


async def read_url(url: str, rules: UrlRules, algorithm: str | None, user_agent: str) -> ReadResult:
    """Read the URL as the importer will, every hop checked: its size, and its digest when `algorithm` is given.

    Redirects are followed by hand (each target checked like the first URL). Without an
    algorithm the body is read only when the server sends no Content-Length.
    Raises UrlRefused, or ReadFailed for anything worth retrying.
    """
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    connector = aiohttp.TCPConnector(resolver=_GuardedResolver(rules), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers={"User-Agent": user_agent}) as http:
        for _ in range(MAX_REDIRECTS + 1):
            await checked_addresses(url, rules)
            try:
                async with http.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    if response.status != 200:
                        raise ReadFailed(
                            f"expected status code 200, got {response.status} ({response.reason}) from {url}"
                        )
                    size = response.content_length
                    if algorithm is None and size is not None:
                        return ReadResult(size=size)
                    digest = hashlib.new(algorithm or "sha256")
                    count = 0
                    async for chunk in response.content.iter_chunked(CHUNK):
                        digest.update(chunk)
                        count += len(chunk)
                    if size is not None and count != size:
                        raise ReadFailed(f"the server sent {count} of {size} bytes")
                    return ReadResult(size=count, digest=f"{algorithm}:{digest.hexdigest()}" if algorithm else None)
            except aiohttp.ClientError as error:
                raise ReadFailed(f"cannot read {url}: {error}") from error
            except TimeoutError as error:
                raise ReadFailed(f"reading {url} timed out") from error
    raise ReadFailed(f"more than {MAX_REDIRECTS} redirects")
