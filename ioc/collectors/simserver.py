"""`ioc simulate`: serve the simulated province's feeds over HTTP (docs/api.md §1.5), or push
them to an `ioc` server's ingest endpoints (docs/api.md §2)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ioc.collectors.simulator import FEED_NAMES, World
from ioc.settings import CollectorSource

log = logging.getLogger("ioc.simulate")
MAX_LIMIT = 10_000


def create_sim_app(world: World) -> Starlette:
    """An ASGI app serving `GET /{feed}?since=&limit=` for the five feeds."""

    async def feed(request: Request) -> JSONResponse:
        name = request.path_params["feed"]
        if name not in FEED_NAMES:
            return JSONResponse({"error": f"unknown feed {name}", "feeds": FEED_NAMES}, 404)
        try:
            limit = min(MAX_LIMIT, max(1, int(request.query_params.get("limit", "500"))))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, 400)
        return JSONResponse(world.page(name, request.query_params.get("since"), limit))

    async def index(request: Request) -> JSONResponse:
        world.advance()
        return JSONResponse({"feeds": {n: len(world.logs[n]) for n in FEED_NAMES}})

    return Starlette(routes=[Route("/", index), Route("/{feed}", feed)])


def demo_sources(base_url: str, interval: float = 2.0) -> list[CollectorSource]:
    """Collector settings that pull every feed of a simulator at `base_url`."""
    return [
        CollectorSource(
            name=f"sim-{feed}",
            kind=feed,
            url=f"{base_url}/{feed}",
            interval_seconds=interval,
            # small pages: the first records show on screens after the first page commits;
            # documents are stored one by one under the ingest lock, so theirs are smaller
            page_size=25 if feed == "documents" else 1000,
        )
        for feed in FEED_NAMES
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_in_thread(world: World, host: str = "127.0.0.1", port: int = 0) -> str:
    """Serve `world` from a daemon thread (its own event loop); → base URL. For `ioc demo`,
    whose main thread runs the API server."""
    port = port or free_port(host)
    config = uvicorn.Config(
        create_sim_app(world), host=host, port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ioc-simulator", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    return f"http://{host}:{port}"


async def push_forever(
    world: World,
    base_url: str,
    token: str,
    *,
    interval: float = 1.0,
    batch: int = 2000,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> None:
    """Push new items of every feed to an `ioc` server, in order, retrying with backoff; an
    item is only skipped past once the server answered 200 for it. `progress(step, done,
    total)` hears of every accepted batch: "backfill" (the history the world starts with,
    its size known), then "new records" (a running count)."""
    sent = dict.fromkeys(FEED_NAMES, 0)
    headers = {"Authorization": f"Bearer {token}"}
    failures = 0
    backfill = sum(len(world.logs[feed]) for feed in FEED_NAMES)

    def accepted(pushed: int) -> None:
        if progress is None:
            return
        if pushed <= backfill:
            progress("backfill", pushed, backfill)
        else:
            progress("new records", pushed - backfill, None)

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        while True:
            world.advance()
            try:
                for feed in FEED_NAMES:
                    others = sum(sent.values()) - sent[feed]
                    sent[feed] = await _push_feed(
                        client, world, feed, sent[feed], batch, partial(_plus, others, accepted)
                    )
                failures = 0
                await asyncio.sleep(interval)
            except (httpx.HTTPError, PushRefused) as exc:
                failures += 1
                delay = random.uniform(0, min(30.0, 0.5 * 2**failures))
                log.warning("push failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)


def _plus(others: int, accepted: Callable[[int], None], offset: int) -> None:
    accepted(others + offset)


class PushRefused(Exception):
    pass


async def _push_feed(
    client: httpx.AsyncClient,
    world: World,
    feed: str,
    offset: int,
    batch: int,
    accepted: Callable[[int], None],
) -> int:
    """Post the feed's items from `offset` on; `accepted(new offset)` after each 200."""
    items: list[Any] = world.logs[feed]
    source = {"source": f"sim-{feed}"}
    while offset < len(items):
        if feed == "documents":
            response = await client.post(
                "/api/v1/ingest/documents", params=source, content=items[offset].encode(),
                headers={"Content-Type": "application/xml"},
            )  # fmt: skip
            step = 1
        else:
            chunk = items[offset : offset + batch]
            path = f"/api/v1/ingest/{feed.replace('_', '-')}"  # agency_reports: agency-reports
            response = await client.post(path, params=source, json=chunk)
            step = len(chunk)
        if response.status_code != 200:
            raise PushRefused(f"{feed}: HTTP {response.status_code} {response.text[:200]}")
        offset += step
        accepted(offset)
    return offset
