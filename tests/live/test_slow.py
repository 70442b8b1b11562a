"""Slow screens: resynchronised or cut off, never slowing the others or growing memory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ioc.db import Database
from ioc.live import Hub
from tests.conftest import RunningServer, ServerMaker
from tests.live.conftest import alert_event, connect, emit, recv, subscribe, token_for


def hub_of(server: RunningServer) -> Hub:
    hub: Hub = server.app.state.ctx.handles.get(Hub)
    return hub


async def metric(server: RunningServer, name: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.rsplit(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def lagging_screen(server: RunningServer, token: str) -> ClientConnection:
    """A screen that reads only when the test calls `recv` (max_queue=1: the client library
    stops reading the socket after one message), so the kernel's buffers fill, then the
    server's transport pauses and its queue fills. A screen that keeps up is written to at
    once and never queues: only a screen that really lags can overflow its queue."""
    # no client pings: a client that does not read would never see their pongs
    return await connect(server.ws_url, token, max_queue=1, ping_interval=None)


async def flood_until(live_db: Database, done: Callable[[], Awaitable[bool]]) -> list[int]:
    """Commit batches of big alert events for 689 until `done()` (bounded: about 25 MB)."""
    published: list[int] = []
    pad = "x" * 32_000
    for batch in range(40):
        events = [alert_event("689", f"{batch}-{i}-{pad}") for i in range(20)]
        published += await emit(live_db, *events)
        await asyncio.sleep(0.1)
        if await done():
            return published
    raise AssertionError("the lagging screen's queue never overflowed")


async def recv_until_snapshot(ws: ClientConnection) -> tuple[dict[str, Any], list[int]]:
    """Read what was already on its way (events, in order), up to the snapshot."""
    seqs: list[int] = []
    while True:
        message = await recv(ws)
        if message["type"] == "snapshot":
            return message, seqs
        seqs.append(message["seq"])


async def test_overflow_becomes_a_snapshot_and_a_caught_up_screen_is_forgiven(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_queue_size=8)
    token = await token_for(live_db, "district", "689")
    before = await metric(server, 'ioc_live_resyncs_total{reason="overflow"}')

    async def resynced(n: float) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await metric(server, 'ioc_live_resyncs_total{reason="overflow"}') >= n

        return check

    async with await lagging_screen(server, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        # the screen stops reading while events keep coming: more than its queue holds
        seqs = await flood_until(live_db, await resynced(before + 1))
        snap, got = await recv_until_snapshot(ws)
        assert snap["seq"] == seqs[-1]
        assert got == sorted(got) and set(got) < set(seqs)  # in order; the rest is covered
        # it caught up: a second overflow is forgiven (another snapshot), not a close
        seqs = await flood_until(live_db, await resynced(before + 2))
        snap, got = await recv_until_snapshot(ws)
        assert snap["seq"] == seqs[-1]
        # and small batches flow as events again
        seqs = await emit(live_db, *[alert_event("689", f"small{i}") for i in range(5)])
        assert [(await recv(ws))["seq"] for _ in range(5)] == seqs
    after = await metric(server, 'ioc_live_resyncs_total{reason="overflow"}')
    assert after - before == 2


async def test_a_screen_that_keeps_up_gets_a_burst_larger_than_its_queue(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_queue_size=8)
    token = await token_for(live_db, "district", "689")
    before = await metric(server, 'ioc_live_resyncs_total{reason="overflow"}')
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        # one commit of 20 events: written as they come to a screen that reads them
        seqs = await emit(live_db, *[alert_event("689", f"burst{i}") for i in range(20)])
        assert [(await recv(ws))["seq"] for _ in range(20)] == seqs
    assert await metric(server, 'ioc_live_resyncs_total{reason="overflow"}') == before


async def test_overflow_policy_close_answers_1013(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_queue_size=8, ws_overflow="close")
    token = await token_for(live_db, "district", "689")
    before = await metric(server, 'ioc_live_disconnects_total{reason="overflow"}')

    async def closed_for_overflow() -> bool:
        return await metric(server, 'ioc_live_disconnects_total{reason="overflow"}') > before

    async with await lagging_screen(server, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        await flood_until(live_db, closed_for_overflow)
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # what was already on its way, then the close
                assert (await recv(ws))["type"] == "alert"
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert closed.value.rcvd.reason.startswith("too slow")


async def test_a_screen_that_never_reads_is_cut_off_and_the_others_get_everything(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_send_timeout_seconds=1)
    hub = hub_of(server)
    token = await token_for(live_db, "district", "689")
    stuck_before = await metric(server, 'ioc_live_disconnects_total{reason="stuck"}')
    readers = [await connect(server.ws_url, token) for _ in range(3)]
    # max_queue=1: the client library stops reading the socket after one message; a small
    # receive buffer makes the kernel stop accepting sooner (the test runs faster)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper = await connect(server.ws_url, token, max_queue=1, sock=sock)
    for ws in [*readers, sleeper]:
        await subscribe(ws, "689", ["today"])
    for ws in readers:
        assert (await recv(ws))["type"] == "snapshot"
    received: list[list[int]] = [[] for _ in readers]

    async def read_all(ws: ClientConnection, into: list[int]) -> None:
        while True:
            message: dict[str, Any] = await recv(ws, timeout=30)
            into.append(message["seq"])

    tasks = [
        asyncio.create_task(read_all(ws, into)) for ws, into in zip(readers, received, strict=True)
    ]
    published: list[int] = []
    pad = "x" * 32_000  # big events fill the sleeper's socket buffers sooner
    try:
        # keep publishing until the sleeper is cut off (bounded: about 25 MB at most)
        for batch in range(40):
            events = [alert_event("689", f"{batch}-{i}-{pad}") for i in range(20)]
            published += await emit(live_db, *events)
            await asyncio.sleep(0.05)
            if len(hub.connections) == 3:
                break
        assert len(hub.connections) == 3, "the sleeping screen was never cut off"
        for _ in range(600):
            if all(len(r) == len(published) for r in received):
                break
            await asyncio.sleep(0.05)
        for r in received:
            assert r == published
    finally:
        for task in tasks:
            task.cancel()
        for ws in [*readers, sleeper]:
            await ws.close()
    stuck_after = await metric(server, 'ioc_live_disconnects_total{reason="stuck"}')
    assert stuck_after - stuck_before == 1
    # what the sleeper had buffered ends with the connection closed, never more events
    with pytest.raises(ConnectionClosed):
        while True:
            await recv(sleeper, timeout=10)
