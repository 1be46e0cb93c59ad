"""Local stand-ins for the sinks' endpoints: a UDP listener and an HTTP recorder on 127.0.0.1.

They are real servers on free ports, so the sinks speak their real wire protocols to them.
`closed_port()` gives a port nobody listens on: an endpoint that is down.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web


def closed_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(check: Any, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll `check()` (sync or async) until true; fail with `what` after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


class UdpListener(asyncio.DatagramProtocol):
    """Collects every datagram sent to 127.0.0.1:`port`, decoded, one list item each."""

    def __init__(self) -> None:
        self.datagrams: list[str] = []
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> UdpListener:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data.decode())

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class HttpRecorder:
    """An HTTP server that records every request and answers `status` (changeable)."""

    def __init__(self, status: int = 202, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s  # answer this late (a slow endpoint)
        self.requests: list[Recorded] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> HttpRecorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def _record(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                orjson.loads(raw) if raw else None,
            )
        )
        return web.json_response({"status": "ok"}, status=self.status)

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
