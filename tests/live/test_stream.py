"""Screens over real sockets: snapshot then deltas, scope, resume, refusals, heartbeats."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ioc.db import Database
from ioc.events import last_seq
from ioc.kpis import CATALOGUE
from ioc.live import Hub
from tests.conftest import ServerMaker
from tests.live.conftest import (
    alert_event,
    connect,
    emit,
    kpi_event,
    recv,
    send,
    subscribe,
    token_for,
)

COMMUNES_689 = 8


async def head(db: Database) -> int:
    async with db.session() as session:
        return await last_seq(session)


async def test_snapshot_then_only_the_subscribed_deltas(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today", "month"])
        snap = await recv(ws)
        assert snap["type"] == "snapshot"
        assert snap["unit"] == "689"
        assert snap["seq"] == await head(live_db)
        assert sorted(snap["kpis"]) == ["month", "today"]
        assert len(snap["kpis"]["today"]) == len(CATALOGUE)
        assert len(snap["children"]["month"]) == COMMUNES_689
        assert snap["alerts"] == []

        seqs = await emit(
            live_db,
            kpi_event("689", "today", "dossier_received", 5),
            kpi_event("689", "year", "dossier_received", 50),  # window not subscribed
            kpi_event("25195", "month", "dossier_received", 2),  # a direct child
            kpi_event("690", "today", "dossier_received", 7),  # another district
            alert_event("25195", "r1"),  # alert anywhere in the subtree
            alert_event("690", "r2"),  # alert elsewhere
        )
        first = await recv(ws)
        assert first == {
            "type": "kpi",
            "seq": seqs[0],
            "unit": "689",
            "window": "today",
            "as_of": "2026-11-27T10:00:00+07:00",
            "kpi": {
                "id": "dossier_received",
                "value": 5,
                "numerator": 5,
                "denominator": None,
                "target": None,
                "status": "ok",
            },
        }
        second = await recv(ws)
        assert (second["type"], second["seq"], second["unit"], second["window"]) == (
            "kpi",
            seqs[2],
            "25195",
            "month",
        )
        third = await recv(ws)
        assert third == {
            "type": "alert",
            "seq": seqs[4],
            "unit": "25195",
            "alert": {"rule": "r1", "unit": "25195", "state": "firing"},
        }
        # nothing else was meant for this screen: the next message is the next event
        [sentinel] = await emit(live_db, kpi_event("689", "month", "report_received", 1))
        assert (await recv(ws))["seq"] == sentinel


async def test_district_a_never_sees_district_b(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    a = await connect(server.ws_url, await token_for(live_db, "district", "689"))
    b = await connect(server.ws_url, await token_for(live_db, "district", "690"))
    province = await connect(server.ws_url, await token_for(live_db, "operator", "70"))
    try:
        since = await head(live_db)
        await subscribe(a, "689", ["today"], since=since)
        await subscribe(b, "690", ["today"], since=since)
        await subscribe(province, "70", ["today"], since=since)
        await asyncio.sleep(0.2)  # let the subscriptions attach before the first commit
        events = []
        for i in range(20):
            unit = ("689", "690")[i % 2]
            # distinct KPIs: updates of one KPI may be coalesced when a screen lags
            events.append(kpi_event(unit, "today", f"kpi{i}", i))
            events.append(alert_event(("25195", "25320")[i % 2], f"rule{i}"))
        seqs = await emit(live_db, *events)
        got_a = [await recv(a) for _ in range(20)]
        got_b = [await recv(b) for _ in range(20)]
        got_p = [await recv(province) for _ in range(40)]
        assert [m["seq"] for m in got_a] == [s for i, s in enumerate(seqs) if (i // 2) % 2 == 0]
        assert [m["seq"] for m in got_b] == [s for i, s in enumerate(seqs) if (i // 2) % 2 == 1]
        assert {m["unit"] for m in got_a} == {"689", "25195"}
        assert {m["unit"] for m in got_b} == {"690", "25320"}
        assert [m["seq"] for m in got_p] == seqs
    finally:
        for ws in (a, b, province):
            await ws.close()


async def test_subscribe_outside_scope_is_refused(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    async with await connect(server.ws_url, await token_for(live_db, "district", "689")) as ws:
        await subscribe(ws, "690", ["today"])
        error = await recv(ws)
        assert error == {
            "type": "error",
            "status": 403,
            "title": "Outside your unit",
            "detail": "unit 690 is outside this token's unit 689",
        }
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == "unit 690 is outside this token's unit 689"
    # the province itself is outside a district too, and an unknown unit is named as such
    async with await connect(server.ws_url, await token_for(live_db, "district", "689")) as ws:
        await subscribe(ws, "70", ["today"])
        assert (await recv(ws))["status"] == 403
    async with await connect(server.ws_url, await token_for(live_db, "admin", None)) as ws:
        await subscribe(ws, "99999", ["today"])
        assert (await recv(ws))["detail"] == "unit 99999 is not a known GSO code"


async def test_handshake_refusals(live_server: ServerMaker, live_db: Database) -> None:
    server = await live_server(ws_allowed_origins=["https://ioc.binhphuoc.gov.vn"])
    with pytest.raises(InvalidStatus) as no_token:
        await connect(server.ws_url, None)
    assert no_token.value.response.status_code == 401
    assert json.loads(no_token.value.response.body)["detail"].startswith("send `Authorization")
    with pytest.raises(InvalidStatus) as bad:
        await connect(server.ws_url, "ioc_not-a-real-token")
    assert bad.value.response.status_code == 401
    collector = await token_for(live_db, "collector", "70")
    with pytest.raises(InvalidStatus) as role:
        await connect(server.ws_url, collector)
    assert role.value.response.status_code == 403
    token = await token_for(live_db, "operator", "70")
    with pytest.raises(InvalidStatus) as origin:
        await connect(server.ws_url, token, origin="https://evil.example")
    assert origin.value.response.status_code == 403
    # the listed origin, and the token in the query string (browsers cannot set headers)
    async with await websockets.connect(
        f"{server.ws_url}?token={token}", origin="https://ioc.binhphuoc.gov.vn", open_timeout=10
    ) as ws:
        await subscribe(ws, "70", ["today"])
        assert (await recv(ws))["type"] == "snapshot"


async def test_resume_with_since_gets_exactly_the_missed_events(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        snap = await recv(ws)
        [seen] = await emit(live_db, kpi_event("689", "today", "dossier_received", 1))
        assert (await recv(ws))["seq"] == seen
    # disconnected: events happen, for us and for others, several for the same KPI
    missed = await emit(
        live_db,
        kpi_event("689", "today", "dossier_received", 2),
        kpi_event("690", "today", "dossier_received", 3),
        kpi_event("689", "today", "dossier_received", 4),
        alert_event("25198", "r"),
        kpi_event("689", "month", "dossier_received", 5),
    )
    assert snap["seq"] < seen
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"], since=seen)
        replayed = [await recv(ws) for _ in range(3)]
        assert [m["seq"] for m in replayed] == [missed[0], missed[2], missed[3]]
        assert [m.get("kpi", {}).get("value") for m in replayed] == [2, 4, None]
        # then live again, with nothing sent twice
        [live] = await emit(live_db, kpi_event("25195", "today", "report_received", 9))
        assert (await recv(ws))["seq"] == live
        # a resume with nothing missed sends nothing until the next event
        await subscribe(ws, "689", ["today"], since=live)
        [after] = await emit(live_db, alert_event("689", "r9"))
        assert (await recv(ws))["seq"] == after


async def test_resume_from_before_the_server_started_is_read_from_the_log(
    live_server: ServerMaker, live_db: Database
) -> None:
    # the hub answers recent resumes from memory (what it dispatched since it started);
    # events committed before this server started can only come from the log
    token = await token_for(live_db, "district", "689")
    since = await head(live_db)
    missed = await emit(
        live_db,
        kpi_event("689", "today", "dossier_received", 7),
        kpi_event("690", "today", "dossier_received", 8),
        alert_event("25198", "before-start"),
    )
    server = await live_server()
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"], since=since)
        replayed = [await recv(ws) for _ in range(2)]
        assert [m["seq"] for m in replayed] == [missed[0], missed[2]]
        assert replayed[0]["kpi"]["value"] == 7
        [live] = await emit(live_db, kpi_event("689", "today", "dossier_received", 9))
        assert (await recv(ws))["seq"] == live


async def test_resume_across_the_hubs_memory_limit_is_exact(
    live_server: ServerMaker, live_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ioc.live.hub

    monkeypatch.setattr(ioc.live.hub, "_RECENT_EVENTS", 2)  # the hub remembers 2 events
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        since = (await recv(ws))["seq"]
    seqs = await emit(
        live_db, *[kpi_event("689", "today", "dossier_received", v) for v in range(5)]
    )
    for resume_from, expected in ((since, seqs), (seqs[2], seqs[3:])):
        async with await connect(server.ws_url, token) as ws:
            # older than what the hub remembers: from the log; else from memory
            await subscribe(ws, "689", ["today"], since=resume_from)
            assert [(await recv(ws))["seq"] for _ in expected] == expected


async def test_since_older_than_the_retained_log_gets_a_snapshot(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    await emit(live_db, kpi_event("689", "today", "dossier_received", 1))
    async with live_db.session() as session:
        from sqlalchemy import text

        oldest = (await session.execute(text("SELECT min(seq) FROM events"))).scalar_one()
        # retention removed the oldest events: a `since` before them cannot be replayed
        await session.execute(text("DELETE FROM events WHERE seq <= :s"), {"s": oldest + 1})
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"], since=oldest)
        snap = await recv(ws)
        assert snap["type"] == "snapshot"
        assert snap["seq"] == await head(live_db)
        # a since from the future (another database) is no better
        await subscribe(ws, "689", ["today"], since=snap["seq"] + 1000)
        assert (await recv(ws))["type"] == "snapshot"


async def test_heartbeats_idle_timeout_and_message_limit(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server(ws_ping_seconds=0.5, ws_idle_timeout_seconds=3)
    token = await token_for(live_db, "operator", "70")
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "70", ["today"])
        snap = await recv(ws)
        ping = await recv(ws, pings=True)
        assert ping == {"type": "ping", "seq": snap["seq"]}
        await send(ws, {"type": "ping"})
        assert await recv(ws, pings=True) == {"type": "pong", "seq": snap["seq"]}
    async with await connect(server.ws_url, token) as ws:
        # a client that says nothing at all is closed after the idle timeout
        with pytest.raises(ConnectionClosed) as idle:
            while True:
                await recv(ws, timeout=15)
        assert idle.value.rcvd is not None
        assert idle.value.rcvd.code == 1008
        assert idle.value.rcvd.reason.startswith("idle")
    async with await connect(server.ws_url, token) as ws:
        await send(ws, {"type": "subscribe", "unit": "70", "pad": "x" * 5000})
        error = await recv(ws)
        assert error["title"] == "Message too big"
        with pytest.raises(ConnectionClosed) as big:
            await recv(ws)
        assert big.value.rcvd is not None and big.value.rcvd.code == 1009


async def test_revoked_token_closes_open_sockets(
    live_server: ServerMaker, live_db: Database
) -> None:
    from ioc.auth import revoke_token

    server = await live_server(ws_auth_recheck_seconds=0.5)
    token = await token_for(live_db, "operator", "70")
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "70", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        async with live_db.session() as session:
            await revoke_token(session, token[:10])
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await recv(ws, timeout=15)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1008,
            "the token was revoked",
        )


async def test_a_screen_that_keeps_up_is_written_to_directly(
    live_server: ServerMaker, live_db: Database
) -> None:
    """The fan-out's fast path (one frame per event written straight to the transport) must
    engage under the uvicorn implementation `ioc serve` runs: a uvicorn upgrade that moves
    its internals would otherwise silently fall back to the slow per-screen ASGI path."""
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    hub = server.app.state.ctx.handles.get(Hub)
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        [conn] = list(hub.connections)
        direct = conn.sink
        assert direct is not None, "no direct writer found under uvicorn's protocol"
        written: list[bytes] = []

        def counting(wire: Any) -> bool:
            ok: bool = direct(wire)
            if ok:
                written.append(wire.data)
            return ok

        conn.sink = counting
        [seq] = await emit(live_db, kpi_event("689", "today", "dossier_received", 4))
        event = await recv(ws)
        assert (event["type"], event["seq"]) == ("kpi", seq)
        assert len(written) == 1 and json.loads(written[0])["seq"] == seq
