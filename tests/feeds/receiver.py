"""A real HTTP/1.1 webhook receiver on 127.0.0.1 (asyncio streams), for tests and benchmarks.

It records every request (headers, body, arrival time), answers with `status` (or what
`respond(request)` returns), can be slowed down (`delay`) and stopped and restarted on the
same port to play "endpoint down".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    path: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    port: int = 0  # 0: any free port, kept across stop()/start()
    status: int = 204
    respond: Callable[[Received], int] | None = None
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    on_receive: Callable[[Received], None] | None = None
    keep: bool = True  # False: do not keep requests in `received` (benchmarks)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and cut every open connection (the endpoint is 'down')."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait (generously) until at least `count` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(self.received)} of {count} deliveries arrived")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, 0.5))
        return self.received

    def seqs(self) -> list[int]:
        return [r.json["seq"] for r in self.received]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(headers, body, time.time(), path)
                if self.delay:
                    await asyncio.sleep(self.delay)
                status = self.respond(request) if self.respond else self.status
                if self.keep:
                    self.received.append(request)
                if self.on_receive is not None:
                    self.on_receive(request)
                self._arrived.set()
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
