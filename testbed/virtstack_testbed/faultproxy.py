"""A fault-injecting HTTPS proxy in front of the API server, for one client (e.g. the operator).

It terminates TLS with the API server's own serving certificate and opens one upstream TLS
connection per client connection with the testbed's admin certificate, so the client sees the
same server and keeps the same identity. Per client request it can answer itself instead of
forwarding: 429 Too Many Requests (with Retry-After) or 409 Conflict, for a share of writes; or
never answer the first writes to a path (a stalled server, the connection left open); or end the
next watches of a path at once with 410 Gone, as the API server does when a watch asks for a
resource version it no longer holds (the client must list again).
It can also mute the watches open at that moment: bytes stop flowing both ways while the
sockets stay open, as a watch behind a stalled load balancer goes silent; watches opened
afterwards work normally (so a client that gives up on a silent stream and reconnects recovers).

HTTP/1.1 only (ALPN), which is what the Python clients speak. Requests are framed by
Content-Length (the clients send no chunked request bodies); responses are piped as they come,
which is safe because an HTTP/1.1 client sends its next request on a connection only after the
previous response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .pki import pki_at
from .plane import Plane

WRITE_VERBS = {b"POST", b"PUT", b"PATCH", b"DELETE"}


@dataclass
class Faults:
    """What the proxy does to the next requests; change it at any time from the test."""

    throttle_share: float = 0.0  # share of writes answered 429
    conflict_share: float = 0.0  # share of writes answered 409
    injected: Counter = field(default_factory=Counter)  # status code -> how many answered by the proxy
    writes: Counter = field(default_factory=Counter)  # request path -> write attempts, injected or not
    watches: int = 0  # watch requests seen
    stall: Counter = field(default_factory=Counter)  # path -> how many more writes to it get no answer ever
    expire: Counter = field(default_factory=Counter)  # path -> how many more watches of it end with 410 Gone


class FaultProxy:
    """Runs on its own event loop thread; `kubeconfig` is a copy of the plane's pointing at the proxy."""

    def __init__(self, plane: Plane, seed: int = 0) -> None:
        self.plane = plane
        self.faults = Faults()
        self.random = random.Random(seed)
        pki = pki_at(Path(plane.run_dir) / "pki")
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(pki.server_cert, pki.server_key)
        self._server_tls.set_alpn_protocols(["http/1.1"])
        self._client_tls = ssl.create_default_context(cafile=str(pki.ca_cert))
        self._client_tls.load_cert_chain(pki.admin_cert, pki.admin_key)
        self._client_tls.set_alpn_protocols(["http/1.1"])
        host, port = plane.server.removeprefix("https://").rsplit(":", 1)
        self._upstream = (host, int(port))
        self._loop = asyncio.new_event_loop()
        self._resume = asyncio.Event()
        self._connections = 0
        self._mute_below = 0  # watch connections numbered below this are muted
        self._watching: set[int] = set()  # numbers of the connections that carry a watch
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self.kubeconfig = str(Path(plane.run_dir) / f"kubeconfig-proxy-{id(self)}")

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        port = self._server.sockets[0].getsockname()[1]
        config = yaml.safe_load(Path(self.plane.kubeconfig).read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
        Path(self.kubeconfig).write_text(yaml.safe_dump(config))
        return self

    def mute(self, muted: bool) -> None:
        """Mute every watch open now (True), or let every muted one go on (False)."""

        def switch() -> None:
            self._mute_below = self._connections if muted else 0
            (self._resume.clear if muted else self._resume.set)()

        self._loop.call_soon_threadsafe(switch)

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> asyncio.Server:
        self._resume.set()
        return await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._server_tls)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream, ssl=self._client_tls)
        except OSError:
            client_writer.close()
            return
        number = self._connections
        self._connections += 1
        piping = asyncio.create_task(self._pipe(number, upstream_reader, client_writer))
        try:
            while request := await _read_request(client_reader):
                await self._passable(number)
                verb, target = request.split(b" ", 2)[:2]
                path = target.split(b"?", 1)[0].decode()
                if b"watch=true" in target or b"watch=1" in target:
                    self._watching.add(number)
                    self.faults.watches += 1
                    if self.faults.expire[path] > 0:
                        self.faults.expire[path] -= 1
                        client_writer.write(_expired_watch())
                        await client_writer.drain()
                        continue
                if verb in WRITE_VERBS and self.faults.stall[path] > 0:
                    self.faults.stall[path] -= 1
                    piping.cancel()  # nothing from upstream reaches the client, not even a close
                    upstream_writer.close()
                    await asyncio.Event().wait()  # a stalled server: no answer, the connection stays open
                if (code := self._injected(verb, path)) is not None:
                    client_writer.write(_status_response(code))
                    await client_writer.drain()
                    continue
                upstream_writer.write(request)
                await upstream_writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._watching.discard(number)
            piping.cancel()
            for writer in (upstream_writer, client_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _pipe(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, ConnectionError):
            while data := await reader.read(65536):
                await self._passable(number)
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _passable(self, number: int) -> None:
        """A muted connection waits: its bytes are held, not dropped, and its sockets stay open."""
        if number < self._mute_below and number in self._watching:
            await self._resume.wait()

    def _injected(self, verb: bytes, path: str) -> int | None:
        if verb not in WRITE_VERBS:
            return None
        self.faults.writes[path] += 1
        draw = self.random.random()
        if draw < self.faults.throttle_share:
            code = 429
        elif draw < self.faults.throttle_share + self.faults.conflict_share:
            code = 409
        else:
            return None
        self.faults.injected[code] += 1
        return code


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's bytes (head and Content-Length body), or None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body


def _failure(code: int, reason: str, message: str) -> dict:
    """A Status object, as the API server answers a failed request."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _response(status_line: str, body: bytes, headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


def _expired_watch() -> bytes:
    """A watch's whole answer when its resource version is gone: one ERROR event, then the end."""
    status = _failure(410, "Expired", "too old resource version (the fault proxy expires this watch)")
    return _response("200 OK", json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")


def _status_response(code: int) -> bytes:
    reason, why, phrase = {
        429: ("TooManyRequests", "the proxy throttles this request", "Too Many Requests"),
        409: ("Conflict", "the proxy reports a conflict for this request", "Conflict"),
    }[code]
    return _response(f"{code} {phrase}", json.dumps(_failure(code, reason, why)).encode(), "Retry-After: 1\r\n")
