"""The event log packs runs of events into rows, and every reader still sees one event per seq."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from ioc.db import Database, current_heads, downgrade, script_heads, upgrade
from ioc.db.engine import asyncpg_dsn
from ioc.events import (
    Event,
    NewEvent,
    last_seq,
    oldest_seq,
    publish,
    purge_before,
    read_runs_since,
    read_since,
)
from tests.conftest import DatabaseFactory


def kpi(unit: str, window: str, kpi_id: str, value: float) -> NewEvent:
    return NewEvent(
        type="kpi",
        unit_code=unit,
        time_window=window,
        subject=kpi_id,
        payload={"unit": unit, "window": window, "kpi": {"id": kpi_id, "value": value}},
    )


def alert(unit: str, rule: str) -> NewEvent:
    return NewEvent(type="alert", unit_code=unit, subject=rule, payload={"alert": {"rule": rule}})


# Runs of several units and types, lone events, a unitless event, a run cut by a type.
MIXED = [
    *[kpi("689", w, k, 0.5) for w in ("today", "month") for k in ("a", "b", "c")],  # run 6
    kpi("688", "today", "a", 0.1),  # lone
    *[kpi("690", "today", k, 0.9) for k in ("a", "b")],  # run 2
    alert("690", "r1"),  # same unit, other type: a row of its own
    *[kpi("690", "year", k, 0.2) for k in ("a", "b", "c")],  # run 3 again for 690
    NewEvent(type="dossier", payload={"id": "HS-1", "nested": [1, {"x": None}]}),  # no unit
    NewEvent(type="dossier", payload={"id": "HS-2", "text": 'Đồng Xoài \u2028 "q"'}),
    alert("689", "r2"),
]


@pytest.fixture(scope="module")
async def events_db(databases: DatabaseFactory) -> AsyncIterator[Database]:
    database = Database(await databases.create(demo_units=False), pool_size=2)
    yield database
    await database.close()


async def _publish(db: Database, events: list[NewEvent]) -> list[int]:
    async with db.session() as session:
        return await publish(session, events)


async def _read_all(db: Database, since: int, limit: int, **filters: Any) -> list[Event]:
    """Page through the log as a tailing reader does: its cursor is the last seq it read."""
    out: list[Event] = []
    async with db.session() as session:
        while True:
            page = await read_since(session, since, limit=limit, **filters)
            out += page
            if len(page) < limit:
                return out
            since = page[-1].seq


def _as_tuples(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.seq, e.type, e.unit_code, e.time_window, e.subject, e.payload) for e in events]


def _expected(seqs: list[int], events: list[NewEvent]) -> list[tuple[Any, ...]]:
    return [
        (s, e.type, e.unit_code, e.time_window, e.subject, e.payload)
        for s, e in zip(seqs, events, strict=True)
    ]


async def test_runs_are_stored_as_one_row_each(events_db: Database) -> None:
    seqs = await _publish(events_db, MIXED)
    assert seqs == list(range(seqs[0], seqs[0] + len(MIXED)))
    async with events_db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT seq, n, last_seq, type, unit_code, time_window, subject, payload, "
                    "items IS NULL AS single FROM events WHERE seq >= :s ORDER BY seq"
                ),
                {"s": seqs[0]},
            )
        ).all()
        assert await last_seq(session) == seqs[-1]
    first = seqs[0]
    assert [(r.seq - first, r.n, r.last_seq - first) for r in rows] == [
        (0, 6, 5), (6, 1, 6), (7, 2, 8), (9, 1, 9), (10, 3, 12), (13, 2, 14), (15, 1, 15),
    ]  # fmt: skip
    # a lone event keeps the shape it always had; a packed row carries its fields in items
    lone = rows[1]
    assert (lone.type, lone.unit_code, lone.time_window, lone.subject, lone.single) == (
        "kpi", "688", "today", "a", True,
    )  # fmt: skip
    assert lone.payload == MIXED[6].payload
    packed = rows[0]
    assert (packed.time_window, packed.subject, packed.payload, packed.single) == (
        None, None, {}, False,
    )  # fmt: skip


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 7, 1000])
async def test_read_since_pages_give_every_event_once_in_order(
    events_db: Database, limit: int
) -> None:
    async with events_db.session() as session:
        before = await last_seq(session)
    seqs = await _publish(events_db, MIXED)
    assert _as_tuples(await _read_all(events_db, before, limit)) == _expected(seqs, MIXED)


@pytest.mark.parametrize("limit", [1, 2, 3, 1000])
async def test_read_since_filters_by_type_and_unit(events_db: Database, limit: int) -> None:
    async with events_db.session() as session:
        before = await last_seq(session)
    seqs = await _publish(events_db, MIXED)
    by_seq = list(zip(seqs, MIXED, strict=True))
    kpis = [(s, e) for s, e in by_seq if e.type == "kpi"]
    in_690 = [(s, e) for s, e in by_seq if e.unit_code == "690"]
    alerts_689 = [(s, e) for s, e in by_seq if e.type == "alert" and e.unit_code == "689"]
    for filters, want in (
        ({"types": ["kpi"]}, kpis),
        ({"units": ["690"]}, in_690),
        ({"types": ["alert"], "units": ["689", "688"]}, alerts_689),
    ):
        got = await _read_all(events_db, before, limit, **filters)
        assert _as_tuples(got) == _expected([s for s, _ in want], [e for _, e in want])


async def test_a_cursor_inside_a_row_resumes_at_the_next_event(events_db: Database) -> None:
    seqs = await _publish(events_db, [kpi("689", "today", f"k{i}", i) for i in range(10)])
    async with events_db.session() as session:
        rest = await read_since(session, seqs[3], limit=100)
        middle = await read_since(session, seqs[3], limit=2)
    assert [e.seq for e in rest] == seqs[4:]
    assert [e.subject for e in rest] == [f"k{i}" for i in range(4, 10)]
    assert [e.seq for e in middle] == seqs[4:6]


@pytest.mark.parametrize("skip", [0, 2, 6, 7, 15])
async def test_the_live_tail_unpacks_stored_rows_after_its_cursor(
    events_db: Database, skip: int
) -> None:
    async with events_db.session() as session:
        before = await last_seq(session)
    seqs = await _publish(events_db, MIXED)
    cursor = before + skip  # may fall inside a packed row
    conn = await asyncpg.connect(asyncpg_dsn(events_db.url))
    try:
        _, got = await read_runs_since(conn, cursor, types=["kpi", "alert"], runs=100)
    finally:
        await conn.close()
    want = [(s, e) for s, e in zip(seqs, MIXED, strict=True) if s > cursor and e.type != "dossier"]
    assert _as_tuples(got) == _expected([s for s, _ in want], [e for _, e in want])


async def test_a_long_run_is_cut_into_rows(events_db: Database) -> None:
    events = [kpi("689", "today", f"k{i}", i) for i in range(1201)]
    seqs = await _publish(events_db, events)
    async with events_db.session() as session:
        counts = (
            (
                await session.execute(
                    text("SELECT n FROM events WHERE seq >= :s ORDER BY seq"), {"s": seqs[0]}
                )
            )
            .scalars()
            .all()
        )
    assert counts == [500, 500, 201]
    assert _as_tuples(await _read_all(events_db, seqs[0] - 1, 333)) == _expected(seqs, events)


async def test_purge_deletes_whole_rows_and_counts_events(databases: DatabaseFactory) -> None:
    db = Database(await databases.create(demo_units=False), pool_size=1)
    try:
        old = await _publish(db, MIXED[:7])  # two rows: 6 events + 1
        async with db.session() as session:
            await session.execute(text("UPDATE events SET created_at = now() - interval '2 hours'"))
        fresh = await _publish(db, MIXED[7:])
        async with db.session() as session:
            assert await oldest_seq(session) == old[0]
            purged = await purge_before(session, datetime.now(UTC) - timedelta(hours=1))
            assert purged == 7
            assert await oldest_seq(session) == fresh[0]
            assert await last_seq(session) == fresh[-1]
    finally:
        await db.close()


async def _log(url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT seq, type, unit_code, time_window, subject, payload::text FROM events "
            "ORDER BY seq"
        )
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


async def test_migration_round_trip_keeps_every_event(databases: DatabaseFactory) -> None:
    url = await databases.create(demo_units=False)
    db = Database(url, pool_size=1)
    try:
        seqs = await _publish(db, MIXED)
    finally:
        await db.close()
    await downgrade(url, "0010_event_batches-1")  # and what was built on it
    assert "0010_event_batches" not in await current_heads(url)
    # one row per event again, same seqs and fields
    unpacked = await _log(url)
    assert [r[:5] for r in unpacked] == [r[:5] for r in _expected(seqs, MIXED)]
    await upgrade(url)
    assert await current_heads(url) == script_heads()
    assert await _log(url) == unpacked
    db = Database(url, pool_size=1)
    try:
        assert _as_tuples(await _read_all(db, 0, 4)) == _expected(seqs, MIXED)
    finally:
        await db.close()
