"""`/api/v1/kpis` over a real server: scope by the token's unit, children, series, targets
for admins, and the engine woken by `NOTIFY ioc_ingest` publishing events within seconds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from ioc.auth import create_token
from ioc.db import Database
from ioc.localtime import LOCAL_TZ

from .conftest import add_dossier, kpi_events_since, last_event_seq


async def token(db: Database, role: str, unit: str | None) -> dict[str, str]:
    async with db.session() as s:
        secret, _ = await create_token(s, name=f"kpis-{role}", role=role, unit_code=unit)
    return {"Authorization": f"Bearer {secret}"}


async def wait_for_events(db: Database, seq: int, predicate: Any, timeout: float = 30.0) -> list:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = [e for e in await kpi_events_since(db, seq) if predicate(e)]
        if events or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(0.05)


async def engine_ready(db: Database) -> None:
    """Wait for the server's engine to finish its first (silent, initialising) round."""
    for _ in range(600):
        async with db.session() as s:
            ready = (
                await s.execute(
                    text("SELECT initialised AND last_local_day = :d FROM kpi_state"),
                    {"d": datetime.now(LOCAL_TZ).date()},
                )
            ).scalar_one()
        if ready:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the KPI engine did not run")


async def test_kpis_api(live_db: Database, make_server: Any) -> None:
    server = await make_server(url=live_db.url)
    await engine_ready(live_db)
    operator_689 = await token(live_db, "operator", "689")
    admin = await token(live_db, "admin", None)
    recently = datetime.now(LOCAL_TZ) - timedelta(hours=1)
    # Let the engine initialise (first round builds kpi_current without events).
    seq = await last_event_seq(live_db)
    async with live_db.session() as s:
        for channel in (2, 2, 1):
            await add_dossier(s, "25195", recently, channel=channel)
        await add_dossier(s, "25320", recently, channel=2)  # in 690: not visible to 689
        await s.execute(text("SELECT pg_notify('ioc_ingest', 'dossiers')"))
    events = await wait_for_events(
        live_db,
        seq,
        lambda e: (
            e.unit_code == "689" and e.time_window == "7d" and e.subject == "dossier_online_rate"
        ),
    )
    assert [e.payload["kpi"]["value"] for e in events] == [2 / 3]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        r = await http.get(
            "/api/v1/kpis", params={"window": "7d", "children": "true"}, headers=operator_689
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["unit"] == "689" and body["window"] == "7d"
        rate = next(k for k in body["kpis"] if k["id"] == "dossier_online_rate")
        assert (rate["numerator"], rate["denominator"], rate["target"], rate["status"]) == (
            2.0,
            3.0,
            0.5,
            "ok",
        )
        assert len(body["children"]) == 8
        assert body["as_of"].endswith("+07:00")

        r = await http.get("/api/v1/kpis", params={"unit": "690"}, headers=operator_689)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await http.get(
            "/api/v1/kpis", params={"unit": "689", "window": "decade"}, headers=operator_689
        )
        assert r.status_code == 422
        r = await http.get("/api/v1/kpis", params={"unit": "689"})
        assert r.status_code == 401

        # Series: per local day; the day of `recently` holds 3 dossiers at 25195.
        day = recently.date().isoformat()
        r = await http.get(
            "/api/v1/kpis/dossier_received/series",
            params={"unit": "25195", "from": day, "to": day},
            headers=operator_689,
        )
        assert r.status_code == 200, r.text
        assert r.json()["points"] == [
            {"period": day, "value": 3.0, "numerator": 3.0, "denominator": None}
        ]
        r = await http.get("/api/v1/kpis/nope/series", params={"unit": "689"}, headers=operator_689)
        assert r.status_code == 404

        # Targets: operators may read but not write; an admin's override applies below.
        r = await http.put(
            "/api/v1/kpis/targets/689/dossier_online_rate",
            json={"target": 0.9},
            headers=operator_689,
        )
        assert r.status_code == 403
        seq = await last_event_seq(live_db)
        r = await http.put(
            "/api/v1/kpis/targets/689/dossier_online_rate", json={"target": 0.9}, headers=admin
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "kpi": "dossier_online_rate",
            "unit": "689",
            "target": 0.9,
            "source": "unit",
        }
        r = await http.get("/api/v1/kpis/targets", params={"unit": "25195"}, headers=operator_689)
        found = {t["kpi"]: t for t in r.json()}
        assert found["dossier_online_rate"]["source"] == "inherited:689"
        assert found["dossier_online_rate"]["target"] == 0.9
        r = await http.get(
            "/api/v1/kpis", params={"unit": "25195", "window": "7d"}, headers=operator_689
        )
        rate = next(k for k in r.json()["kpis"] if k["id"] == "dossier_online_rate")
        assert (rate["target"], rate["status"]) == (0.9, "bad")  # 2/3 < 0.9
        changed = await kpi_events_since(live_db, seq)
        assert {
            (e.unit_code, e.time_window)
            for e in changed
            if e.subject == "dossier_online_rate" and e.payload["kpi"]["target"] == 0.9
        } >= {("689", "7d"), ("25195", "7d")}
        r = await http.put(
            "/api/v1/kpis/targets/689/dossier_online_rate", json={"target": None}, headers=admin
        )
        assert r.json()["source"] == "catalogue"


async def test_engine_wakes_on_ingest(live_db: Database, make_server: Any) -> None:
    server = await make_server(url=live_db.url)
    await engine_ready(live_db)
    seq = await last_event_seq(live_db)
    async with live_db.session() as s:
        await add_dossier(s, "25333", datetime.now(LOCAL_TZ) - timedelta(hours=2))
        await s.execute(text("SELECT pg_notify('ioc_ingest', 'dossiers')"))
    events = await wait_for_events(
        live_db,
        seq,
        lambda e: (
            e.unit_code == "25333" and e.subject == "dossier_received" and e.time_window == "year"
        ),
    )
    assert [e.payload["kpi"]["value"] for e in events] == [1.0]
    # The engine mirrors its values into the ioc_kpi_value gauges once the round committed.
    line = 'ioc_kpi_value{kpi="dossier_received",unit="25333",window="year"} 1.0'
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for _ in range(200):
            if line in (await http.get("/metrics")).text:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("ioc_kpi_value was not exported")
