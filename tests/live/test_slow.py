"""Slow screens: resynchronised or cut off, never slowing the others or growing memory."""

from __future__ import annotations

import asyncio
import socket
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
    hub: Hub = server.app.state.ctx.rooms["live"]
    return hub


async def metric(server: RunningServer, name: str) -> float:
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.rsplit(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_burst_over_the_queue_becomes_a_snapshot(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_queue_size=8)
    token = await token_for(live_db, "district", "689")
    before = await metric(server, 'ioc_live_resyncs_total{reason="overflow"}')
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        # one commit of 20 events for this screen: more than its queue holds at once
        seqs = await emit(live_db, *[alert_event("689", f"burst{i}") for i in range(20)])
        snap = await recv(ws)
        assert (snap["type"], snap["seq"]) == ("snapshot", seqs[-1])
        # the screen caught up: a second burst is forgiven (another snapshot), not a close
        seqs = await emit(live_db, *[alert_event("689", f"again{i}") for i in range(20)])
        snap = await recv(ws)
        assert (snap["type"], snap["seq"]) == ("snapshot", seqs[-1])
        # and small batches flow as events again
        seqs = await emit(live_db, *[alert_event("689", f"small{i}") for i in range(5)])
        assert [(await recv(ws))["seq"] for _ in range(5)] == seqs
    after = await metric(server, 'ioc_live_resyncs_total{reason="overflow"}')
    assert after - before == 2


async def test_overflow_policy_close_answers_1013(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_queue_size=8, ws_overflow="close")
    token = await token_for(live_db, "district", "689")
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        await emit(live_db, *[alert_event("689", f"burst{i}") for i in range(20)])
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
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
