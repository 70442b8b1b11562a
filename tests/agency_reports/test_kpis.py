"""The reports of agencies' KPIs equal hand counts (docs/kpis.md), at commune, district and
province, for every window, on records taken in through the real ingest path; the clock alone
makes a report overdue; a late filing moves the rates with events; the naive GROUP BY and a
rebuild agree; `overdue_agency_reports` lists the set the overdue KPI counts.

Now is Sunday 2026-03-15 10:00 local. 25195 and 25198 are communes of district 689, 25320 of
690; all of province 70.

| report | unit | due | filed | counts |
|---|---|---|---|---|
| A1 | 25195 | 10 Mar (the day) | 9 Mar, online | filed online, on time |
| A2 | 25195 | 10 Mar | 12 Mar, paper | filed on paper, late |
| A3 | 25195 | 14 Mar 17:00 | — | due, not on time, overdue |
| A4 | 25195 | 15 Mar 16:00 (today) | — | due today, not on time yet, overdue at 17:00 |
| A5 | 25195 | 12 Mar, cancelled | — | nowhere |
| A6 | 25195 | 15 Feb | 14 Feb, online | quarter and year only |
| B1 | 25198 | 13 Mar 17:00 | 16:59:59, online | on time (a second to spare) |
| B2 | 25198 | 13 Mar 17:00 | 17:00:01, online | late by a second |
| C1 | 25320 | 20 Mar | today 08:00, paper | filed today; due in no window yet |
| C2 | 25320 | 5 Mar 17:00 | — | due, overdue |
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from ioc.collectors import ingest_json, overdue_agency_reports
from ioc.db import Database
from ioc.events import last_seq, read_since
from ioc.kpis import kpi_value, rebuild, run_round, snapshot
from ioc.kpis.compute import compute
from ioc.localtime import LOCAL_TZ, WINDOWS

from ..conftest import DatabaseFactory
from ..kpis.naive import naive_values
from .factories import agency_report, filed

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=LOCAL_TZ)
IDS = ("agency_report_online_rate", "agency_report_ontime_rate", "agency_report_overdue_open")
UNITS = ["25195", "25198", "689", "25320", "690", "70"]

RECORDS = [
    filed("A1", "2026-03-09T15:00:00+07:00", "online", status="accepted"),
    filed("A2", "2026-03-12T09:00:00+07:00", "paper"),
    agency_report("A3", due_at="2026-03-14T17:00:00+07:00"),
    agency_report("A4", requested_at="2026-03-09T08:00:00+07:00",
                  due_at="2026-03-15T16:00:00+07:00", frequency="weekly"),
    agency_report("A5", due_at="2026-03-12", status="cancelled"),
    filed("A6", "2026-02-14T10:00:00+07:00", "online", requested_at="2026-02-01T08:00:00+07:00",
          due_at="2026-02-15", period="2026-02"),
    filed("B1", "2026-03-13T16:59:59+07:00", "online", unit="25198",
          due_at="2026-03-13T17:00:00+07:00"),
    filed("B2", "2026-03-13T17:00:01+07:00", "online", unit="25198",
          due_at="2026-03-13T17:00:00+07:00"),
    filed("C1", "2026-03-15T08:00:00+07:00", "paper", unit="25320", due_at="2026-03-20",
          receiver="690"),
    agency_report("C2", unit="25320", due_at="2026-03-05T17:00:00+07:00", receiver="690"),
]  # fmt: skip


@pytest.fixture(scope="module")
async def kdb(databases: DatabaseFactory) -> AsyncIterator[Database]:
    """A database of this module's records alone (literal counts)."""
    database = Database(await databases.create(), pool_size=3)
    async with database.session() as s:
        result = await ingest_json(s, "agency_reports", "hand", RECORDS)
    assert result.response() == {"accepted": 10, "rejected": []}
    async with database.session() as s:
        await run_round(s, now=NOW)
    yield database
    await database.close()


def fractions(kpis: list[Any]) -> dict[str, Any]:
    """The three KPIs: (numerator, denominator) of a rate, the value of a count."""
    return {
        k.id: (k.numerator, k.denominator) if k.denominator is not None else k.value
        for k in kpis
        if k.id in IDS
    }


async def values(db: Database, unit: str, window: str, now: datetime = NOW) -> dict[str, Any]:
    async with db.session() as s:
        return fractions((await snapshot(s, unit, window, now=now)).kpis)


# unit -> window -> (online / filed, on time / due, overdue)
EXPECTED = {
    "25195": {
        "today": ((0.0, 0.0), (0.0, 1.0), 1.0),  # A4 due today, not filed yet
        "7d": ((1.0, 2.0), (1.0, 4.0), 1.0),  # 9..15 March: A1, A2 filed; A1..A4 due
        "month": ((1.0, 2.0), (1.0, 4.0), 1.0),
        "quarter": ((2.0, 3.0), (2.0, 5.0), 1.0),  # + A6 of February
        "year": ((2.0, 3.0), (2.0, 5.0), 1.0),
    },
    "25198": dict.fromkeys(("7d", "month", "quarter", "year"), ((2.0, 2.0), (1.0, 2.0), 0.0))
    | {"today": ((0.0, 0.0), (0.0, 0.0), 0.0)},
    "689": {
        "today": ((0.0, 0.0), (0.0, 1.0), 1.0),
        "7d": ((3.0, 4.0), (2.0, 6.0), 1.0),
        "month": ((3.0, 4.0), (2.0, 6.0), 1.0),
        "quarter": ((4.0, 5.0), (3.0, 7.0), 1.0),
        "year": ((4.0, 5.0), (3.0, 7.0), 1.0),
    },
    "25320": {
        "today": ((0.0, 1.0), (0.0, 0.0), 1.0),  # C1 filed today on paper
        "7d": ((0.0, 1.0), (0.0, 0.0), 1.0),  # C2 was due on the 5th: not in 9..15
        "month": ((0.0, 1.0), (0.0, 1.0), 1.0),
        "quarter": ((0.0, 1.0), (0.0, 1.0), 1.0),
        "year": ((0.0, 1.0), (0.0, 1.0), 1.0),
    },
    "70": {
        "today": ((0.0, 1.0), (0.0, 1.0), 2.0),
        "7d": ((3.0, 5.0), (2.0, 6.0), 2.0),
        "month": ((3.0, 5.0), (2.0, 7.0), 2.0),
        "quarter": ((4.0, 6.0), (3.0, 8.0), 2.0),
        "year": ((4.0, 6.0), (3.0, 8.0), 2.0),
    },
}
EXPECTED["690"] = EXPECTED["25320"]


def expected(unit: str, window: str) -> dict[str, Any]:
    online, ontime, overdue = EXPECTED[unit][window]
    return dict(zip(IDS, (online, ontime, overdue), strict=True))


async def test_hand_counts_every_unit_and_window(kdb: Database) -> None:
    for unit in UNITS:
        for window in WINDOWS:
            assert await values(kdb, unit, window) == expected(unit, window), (unit, window)
    async with kdb.session() as s:
        online = await kpi_value(s, "agency_report_online_rate", "70", "month", now=NOW)
        ontime = await kpi_value(s, "agency_report_ontime_rate", "689", "month", now=NOW)
        overdue = await kpi_value(s, "agency_report_overdue_open", "25198", "year", now=NOW)
        none_filed = await kpi_value(s, "agency_report_online_rate", "25195", "today", now=NOW)
    assert (online.value, online.target, online.status) == (0.6, 0.5, "ok")  # 3/5 ≥ 50 % + 5 %
    assert (ontime.value, ontime.target, ontime.status) == (2 / 6, 0.9, "bad")
    assert (overdue.value, overdue.status) == (0.0, "ok")
    assert (none_filed.value, none_filed.status) == (None, "no_data")


async def test_the_naive_group_by_agrees(kdb: Database) -> None:
    async with kdb.session() as s:
        for window in WINDOWS:
            fast = await compute(s, UNITS, [window], NOW, NOW.date())
            slow = await naive_values(s, UNITS, window, NOW)
            for unit in UNITS:
                assert fast[(unit, window)] == slow[unit], (unit, window)
                got = {k: slow[unit][k] for k in IDS}
                assert {k: (v.numerator, v.denominator) if v.denominator is not None
                        else v.value for k, v in got.items()} == expected(unit, window)  # fmt: skip


async def test_overdue_list_is_the_set_the_kpi_counts(kdb: Database) -> None:
    async with kdb.session() as s:
        district = await overdue_agency_reports(s, "689", 10, now=NOW)
        province = await overdue_agency_reports(s, 70, 10, now=NOW)
        first = await overdue_agency_reports(s, "70", 1, now=NOW)
        later = await overdue_agency_reports(s, "25195", 10, now=NOW.replace(hour=17))
    assert [(r.id, r.unit_code, r.overdue_days) for r in district] == [("A3", "25195", 0)]
    # most overdue first: C2 was due 9 days 17 hours ago
    assert [(r.id, r.unit_code, r.overdue_days) for r in province] == [
        ("C2", "25320", 9),
        ("A3", "25195", 0),
    ]
    assert [r.id for r in first] == ["C2"]
    assert province[0].unit_name is not None and province[0].title is not None
    assert province[0].due_at == datetime(2026, 3, 5, 17, tzinfo=LOCAL_TZ)
    assert [r.id for r in later] == ["A3", "A4"]  # A4 was due at 16:00


async def test_the_clock_alone_makes_a_report_overdue(kdb: Database) -> None:
    """At 17:00 with no round since 10:00, A4 (due 16:00) is overdue: served from the
    engine's stored values plus what fell due since."""
    evening = NOW.replace(hour=17)
    assert (await values(kdb, "25195", "month", evening))["agency_report_overdue_open"] == 2.0
    assert (await values(kdb, "689", "today", evening))["agency_report_overdue_open"] == 2.0
    assert (await values(kdb, "70", "year", evening))["agency_report_overdue_open"] == 3.0


async def test_a_late_filing_moves_the_rates_with_events_and_rebuild_agrees(
    kdb: Database,
) -> None:
    async with kdb.session() as s:
        seq = await last_seq(s)
        # A3 filed online at 10:30, late; a re-sent A1 changes nothing
        result = await ingest_json(
            s, "agency_reports", "hand",
            [filed("A3", "2026-03-15T10:30:00+07:00", "online",
                   due_at="2026-03-14T17:00:00+07:00"),
             RECORDS[0]],
        )  # fmt: skip
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    moment = NOW + timedelta(minutes=45)
    async with kdb.session() as s:
        assert (await run_round(s, now=moment)).records == 1
    month = await values(kdb, "25195", "month", moment)
    assert month == {
        "agency_report_online_rate": (2.0, 3.0),  # A1, A3 online; A2 on paper
        "agency_report_ontime_rate": (1.0, 4.0),  # A3 filed late: still not on time
        "agency_report_overdue_open": 0.0,  # A4 not due before 16:00
    }
    async with kdb.session() as s:
        events = [e for e in await read_since(s, seq, limit=10_000) if e.type == "kpi"]
    changed = {(e.unit_code, e.time_window, e.subject) for e in events}
    for unit in ("25195", "689", "70"):
        for window in WINDOWS:
            assert (unit, window, "agency_report_overdue_open") in changed
        for window in ("today", "7d", "month", "quarter", "year"):
            assert (unit, window, "agency_report_online_rate") in changed
    assert not any(e.subject == "agency_report_ontime_rate" for e in events)  # 1/4 stays
    assert {e.unit_code for e in events} == {"25195", "689", "70"}
    event = next(
        e for e in events
        if (e.unit_code, e.time_window, e.subject) == ("25195", "month",
                                                        "agency_report_online_rate")
    )  # fmt: skip
    assert event.payload["kpi"] == {
        "id": "agency_report_online_rate",
        "value": 2 / 3,
        "numerator": 2.0,
        "denominator": 3.0,
        "target": 0.5,
        "status": "ok",
    }
    async with kdb.session() as s:
        assert (await rebuild(s, now=moment)).events == 0  # the incremental path was right
