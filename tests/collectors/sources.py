"""A real HTTP source (docs/api.md §1.5) on a local socket, with scripted failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..conftest import free_port

# A fault for the n-th request: "500", "503", "timeout", "garbage", "dup" (serve the
# previous page again), or None for a normal page.
Script = Callable[[int], str | None]


class FaultySource:
    def __init__(
        self, items: list[Any], script: Script = lambda n: None, delay: float = 0.0
    ) -> None:
        self.items = items
        self.script = script
        self.delay = delay
        self.requests = 0
        self.served: list[str] = []
        self.auth: set[str | None] = set()
        self._previous: int | None = None
        self.port = free_port()
        app = Starlette(routes=[Route("/feed", self.feed)])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed"

    async def feed(self, request: Request) -> Response:
        self.requests += 1
        self.auth.add(request.headers.get("authorization"))
        fault = self.script(self.requests)
        self.served.append(fault or "page")
        if self.delay:
            await asyncio.sleep(self.delay)
        if fault in ("500", "503"):
            return Response("upstream broke", status_code=int(fault))
        if fault == "timeout":
            await asyncio.sleep(3)
        if fault == "garbage":
            return Response(b'{"items": [{"MaHoSo": "trunc', media_type="application/json")
        since = request.query_params.get("since")
        limit = int(request.query_params["limit"])
        start = int(since) if since else 0
        if fault == "dup" and self._previous is not None:
            start = self._previous
        self._previous = start
        page = self.items[start : start + limit]
        end = start + len(page)
        body = {"items": page, "next": str(end), "has_more": end < len(self.items)}
        # ASCII-escaped, NaN allowed: a real source may send what strict JSON encoders refuse
        # (lone surrogates, NaN), and the collector must cope with it
        return Response(json.dumps(body).encode("ascii"), media_type="application/json")

    async def __aenter__(self) -> FaultySource:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
