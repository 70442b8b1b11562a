"""The demo produces reports of agencies: `ioc demo`'s own steps (`prepare_demo`,
`start_demo_sources`: the simulator on a real port in its thread, a collector per feed) bring
them in over HTTP, every one taken in, and the KPIs show them at the province."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from ioc.collectors import overdue_agency_reports, prepare_demo, start_demo_sources
from ioc.collectors.pull import poll
from ioc.collectors.simulator import World
from ioc.db import Database
from ioc.kpis import run_round, snapshot

from ..conftest import DatabaseFactory
from ..conftest import test_settings as server_settings
from .factories import agency_report

START = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)
_COUNTS = text(
    """
    SELECT count(*), count(DISTINCT unit_code), count(*) FILTER (WHERE channel = 'online'),
           count(*) FILTER (WHERE channel = 'paper'), count(*) FILTER (WHERE filed_at IS NULL)
    FROM agency_reports WHERE source = 'sim-agency_reports'
    """
)
_LETTERS = text("SELECT count(*) FROM dead_letters")


def test_the_simulated_calendar() -> None:
    """Weekly reports of the 11 districts (Monday 08:00 → Friday 16:00), monthly ones of
    every district and commune (1st → the 15th, a day); the same seed gives the same
    records, and the other feeds are the same as without them."""
    w = World(seed=3, start=START, clock=lambda: START, backfill_days=21, backfill_per_day=10)
    latest = {r["id"]: r for r in w.logs["agency_reports"]}
    weekly = [r for r in latest.values() if r["frequency"] == "weekly"]
    monthly = [r for r in latest.values() if r["frequency"] == "monthly"]
    assert sorted({r["period"] for r in weekly}) == ["2026-W10", "2026-W11", "2026-W12"]
    assert len(weekly) == 3 * 11
    assert {r["period"] for r in monthly} == {"2026-03"} and len(monthly) == 11 + 111
    first = next(r for r in weekly if r["period"] == "2026-W12")
    assert (first["requested_at"], first["due_at"]) == (
        "2026-03-16T08:00:00+07:00",
        "2026-03-20T16:00:00+07:00",
    )
    assert {r["due_at"] for r in monthly} == {"2026-03-15"}
    statuses = Counter(r["status"] for r in latest.values())
    assert statuses["accepted"] > statuses["filed"] > statuses["requested"] > 0
    assert {r.get("channel") for r in latest.values()} == {"online", "paper", None}
    again = World(seed=3, start=START, clock=lambda: START, backfill_days=21, backfill_per_day=10)
    assert again.logs == w.logs
    # later versions appear as the clock moves: a week later, W13's requests
    w.advance(START + timedelta(days=3))
    assert any(r["period"] == "2026-W13" for r in w.logs["agency_reports"])
    # the documented format's fields, as the tests' factory writes them
    assert set(agency_report("X")) <= set(first)


async def test_the_demo_pulls_them_and_shows_them(databases: DatabaseFactory) -> None:
    url = await databases.create(demo_units=False)
    settings = server_settings()
    await prepare_demo(url, settings)
    demo = start_demo_sources(settings)
    sources = {s.name: s for s in demo.collectors}
    assert set(sources) >= {"sim-dossiers", "sim-agency_reports"}
    source = sources["sim-agency_reports"]
    assert source.kind == "agency_reports" and source.url.startswith("http://127.0.0.1:")
    db = Database(url, pool_size=2)
    try:
        async with httpx.AsyncClient() as client:
            await poll(db, client, source, max_pages=100)
        async with db.session() as s:
            stored = (await s.execute(_COUNTS)).one()
            letters = (await s.execute(_LETTERS)).scalar_one()
        reports, units, online, paper, unfiled = stored
        assert letters == 0
        assert reports >= 11 + 111  # at least one month's requests of every district, commune
        assert units == 11 + 111
        assert online > 0 and paper > 0 and unfiled > 0
        now = datetime.now(UTC)
        async with db.session() as s:
            await run_round(s, now=now)
        async with db.session() as s:
            kpis = {k.id: k for k in (await snapshot(s, "70", "year", now=now)).kpis}
            overdue = await overdue_agency_reports(s, "70", 1000, now=now)
        rate = kpis["agency_report_online_rate"]
        assert rate.value is not None and 0 < rate.value < 1 and rate.target == 0.5
        assert kpis["agency_report_overdue_open"].value == len(overdue)
    finally:
        await db.close()
