"""Window edges at local midnight, month, quarter and year ends; roll-overs and records
becoming overdue change values and emit events with no new data (the engine's tick)."""

from __future__ import annotations

from datetime import UTC, datetime

from ioc.db import Database
from ioc.kpis import kpi_value

from .conftest import (
    add_dossier,
    add_report,
    at,
    engine_round,
    kpi_events_since,
    last_event_seq,
)


async def received(db: Database, unit: str, window: str, now: datetime) -> float | None:
    async with db.session() as s:
        return (await kpi_value(s, "dossier_received", unit, window, now=now)).value


async def test_midnight_edges(kdb: Database) -> None:
    async with kdb.session() as s:
        await add_dossier(s, "25320", at(2026, 3, 31, 23, 59, 59))
        # 00:00:00 local on 1 April is 17:00:00 UTC on 31 March: it belongs to April.
        await add_dossier(s, "25320", datetime(2026, 3, 31, 17, 0, 0, tzinfo=UTC))
    before = at(2026, 3, 31, 23, 59, 59)
    after = at(2026, 4, 1, 0, 0, 0)
    await engine_round(kdb, before)
    # Before midnight the April dossier is not yet in any window (it is in the future).
    assert [await received(kdb, "25320", w, before) for w in ("today", "7d", "month")] == [
        1.0,
        1.0,
        1.0,
    ]
    assert [
        await received(kdb, "25320", w, after) for w in ("today", "7d", "month", "quarter", "year")
    ] == [1.0, 2.0, 1.0, 1.0, 2.0]


async def test_month_end_rollover_emits_without_new_data(kdb: Database) -> None:
    # 28 February 2027 (not a leap year) 23:30, then 1 March 00:00:01.
    async with kdb.session() as s:
        await add_dossier(s, "25324", at(2027, 2, 28, 23, 30), channel=2)
    await engine_round(kdb, at(2027, 2, 28, 23, 45))
    seq = await last_event_seq(kdb)
    await engine_round(kdb, at(2027, 3, 1, 0, 0, 1))
    events = await kpi_events_since(kdb, seq)
    mine = {
        (e.time_window, e.subject): e.payload["kpi"]["value"]
        for e in events
        if e.unit_code == "25324" and e.subject in ("dossier_received", "dossier_online_rate")
    }
    # today and month are empty now; the rate has no denominator any more (null).
    assert mine == {
        ("today", "dossier_received"): 0.0,
        ("today", "dossier_online_rate"): None,
        ("month", "dossier_received"): 0.0,
        ("month", "dossier_online_rate"): None,
    }
    assert await received(kdb, "25324", "7d", at(2027, 3, 1, 0, 0, 1)) == 1.0
    assert await received(kdb, "25324", "quarter", at(2027, 3, 1, 0, 0, 1)) == 1.0


async def test_year_and_quarter_ends(kdb: Database) -> None:
    async with kdb.session() as s:
        await add_dossier(s, "25325", at(2026, 12, 31, 12))
        await add_dossier(s, "25325", at(2026, 9, 30, 23, 59))
        await add_dossier(s, "25325", at(2026, 10, 1, 0, 0))
    await engine_round(kdb, at(2027, 1, 1, 0, 1))
    new_year = at(2027, 1, 1, 0, 1)
    assert await received(kdb, "25325", "year", new_year) == 0.0
    assert await received(kdb, "25325", "7d", new_year) == 1.0
    last_day = at(2026, 12, 31, 23, 59)
    assert await received(kdb, "25325", "quarter", last_day) == 2.0  # 1 Oct and 31 Dec
    assert await received(kdb, "25325", "year", last_day) == 3.0
    assert await received(kdb, "25325", "month", last_day) == 1.0


async def test_becoming_overdue_emits_on_tick(kdb: Database) -> None:
    async with kdb.session() as s:
        await add_dossier(s, "25326", at(2026, 5, 4, 8), status=4, due_at=at(2026, 5, 6, 10))
        await add_report(s, "25326", at(2026, 5, 5, 8), due_at=at(2026, 5, 6, 10, 30))
    await engine_round(kdb, at(2026, 5, 6, 9, 0))
    seq = await last_event_seq(kdb)
    await engine_round(kdb, at(2026, 5, 6, 10, 0, 1))
    events = await kpi_events_since(kdb, seq)
    overdue = sorted(
        (e.unit_code, e.time_window, e.payload["kpi"]["value"])
        for e in events
        if e.subject == "dossier_overdue_open"
    )
    # The commune, its district 690 and the province, for each of the 5 windows.
    assert len(overdue) == 15
    assert {u for u, _, _ in overdue} == {"25326", "690", "70"}
    assert {v for *_, v in overdue if _[0] == "25326"} == {1.0}
    assert not [e for e in events if e.subject == "report_overdue_open"]
    seq = await last_event_seq(kdb)
    await engine_round(kdb, at(2026, 5, 6, 10, 30, 1))
    events = await kpi_events_since(kdb, seq)
    assert {(e.unit_code, e.subject) for e in events} == {
        (u, "report_overdue_open") for u in ("25326", "690", "70")
    }
    assert len(events) == 15
