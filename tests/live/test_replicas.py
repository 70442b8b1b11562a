"""Two server processes on one database: an event committed through one reaches screens on
both (LISTEN/NOTIFY carries the seq; each process reads the rows itself)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection

from ioc.db import Database
from tests.conftest import ServerMaker, free_port
from tests.live.conftest import alert_event, connect, emit, recv, subscribe, token_for

pytestmark = pytest.mark.slow
VN = timezone(timedelta(hours=7))


@pytest.fixture
async def other_process(live_url: str) -> AsyncIterator[str]:
    """`ioc serve` in a subprocess on the same database; yields its ws:// URL."""
    port = free_port()
    env = {
        **os.environ,
        "IOC_DATABASE_URL": live_url,
        "IOC_MIGRATE_ON_START": "false",
        "IOC_ALERTS_ENABLED": "false",
        "IOC_FEEDS_ENABLED": "false",
        "IOC_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ioc", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(600):
                if proc.poll() is not None:
                    raise RuntimeError(f"ioc serve exited with {proc.returncode}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("ioc serve did not start within 60 s")
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def next_of(ws: ClientConnection, kind: str, **match: Any) -> dict[str, Any]:
    """The next message of `kind` whose fields equal `match` (others are skipped)."""
    while True:
        message = await recv(ws, timeout=60)
        if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
            return message


async def next_kpi(ws: ClientConnection, unit: str, window: str, kpi: str) -> dict[str, Any]:
    while True:
        message = await next_of(ws, "kpi", unit=unit, window=window)
        if message["kpi"]["id"] == kpi:
            return message


async def test_an_event_committed_through_one_process_reaches_screens_on_both(
    live_server: ServerMaker, other_process: str, live_db: Database
) -> None:
    here = await live_server()
    token = await token_for(live_db, "district", "689")
    on_here = await connect(here.ws_url, token)
    on_other = await connect(other_process, token)
    try:
        for ws in (on_here, on_other):
            await subscribe(ws, "689", ["today"])
            assert (await recv(ws, timeout=60))["type"] == "snapshot"
        # a dossier received now, ingested through this process: the KPI engine (leased,
        # on whichever process holds the lease) publishes the new count of today's dossiers
        now = datetime.now(VN).strftime("%Y%m%d%H%M%S")
        dossier = {
            "MaHoSo": "LIVE-REPLICA-1",
            "MaTTHC": "1.001612.000.00.00.H10",
            "KenhThucHien": 2,
            "MaDonVi": "689",
            "NgayTiepNhan": now,
            "TrangThaiHoSo": 4,
        }
        collector = await token_for(live_db, "collector", "70")
        async with httpx.AsyncClient(base_url=here.url, timeout=30) as http:
            response = await http.post(
                "/api/v1/ingest/dossiers",
                json=[dossier],
                headers={"Authorization": f"Bearer {collector}"},
            )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1
        try:
            got = [
                await asyncio.wait_for(next_kpi(ws, "689", "today", "dossier_received"), 60)
                for ws in (on_here, on_other)
            ]
        except TimeoutError:
            async with live_db.session() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT seq, type, unit_code, time_window, subject FROM events "
                            "ORDER BY seq DESC LIMIT 5"
                        )
                    )
                ).all()
                state = (await session.execute(text("SELECT * FROM kpi_state"))).all()
                locks = (
                    await session.execute(
                        text(
                            "SELECT l.objid, a.client_port, a.state, a.backend_start "
                            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                            "WHERE l.locktype = 'advisory' AND l.granted"
                        )
                    )
                ).all()
            pytest.fail(
                f"no dossier_received event; last events {rows}; engine {state}; "
                f"advisory locks {locks}"
            )
        assert got[0] == got[1]
        assert got[0]["kpi"]["value"] == 1
        # and an event committed by a third party (this test's own connection) as well
        [seq] = await emit(live_db, alert_event("25195", "replica"))
        for ws in (on_here, on_other):
            assert (await next_of(ws, "alert", seq=seq))["unit"] == "25195"
    finally:
        await on_here.close()
        await on_other.close()
