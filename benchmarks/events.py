"""Event log write benchmark: one engine round's `kpi` events, packed rows vs a row per event.

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/events.py [--events 4200] [--units 123] [--rounds 30]

Creates and drops its own database on that server. Each round publishes --events `kpi`
events spread over --units units, ordered by unit (as the engine emits them), in one
transaction, and times the transaction (lock, seqs, insert, NOTIFY, commit) three ways,
interleaved round by round so that they share the machine's state:
- `packed`: `ioc.events.publish` (one row per run of one unit's events);
- `per_row_insert` (raw baseline): what `publish` did before, one row per event through
  `INSERT … SELECT nextval(…) … FROM jsonb_to_recordset(…)`;
- `per_row_copy` (raw baseline): one row per event by asyncpg COPY, the cheapest way to
  write them one by one.
All three write the same `events` table with its indexes. It also times reading a round
back with every payload parsed, as a tail reader does: `packed_rows` (the live hub: stored
rows unpacked in Python), `packed_view` (pages of 1,000 events from the `event_log` view)
and `per_row` (pages of 1,000 rows of a per-row round: the hub's read before).

Prints `name: value unit` lines (gathered by benchmarks/run_all.py) and BENCH_JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.db import Database, upgrade  # noqa: E402
from ioc.db.engine import asyncpg_dsn, with_database  # noqa: E402
from ioc.events import NewEvent, last_seq, publish, read_runs_since  # noqa: E402

KPIS = [f"kpi_{i:02d}" for i in range(7)]
WINDOWS = ["today", "7d", "month", "quarter", "year"]
_LOCK = "SELECT pg_advisory_xact_lock(x'10CE7E7'::int)"
# The event log's write before record batches, kept here as the raw baseline.
_PER_ROW_INSERT = """
    INSERT INTO events (seq, type, unit_code, time_window, subject, payload)
    SELECT nextval('event_seq'), e.type, e.unit_code, e.time_window, e.subject, e.payload
    FROM (
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
            ord int, type text, unit_code text, time_window text, subject text, payload jsonb)
        ORDER BY r.ord
    ) AS e
    RETURNING seq
"""
_OLD_TAIL_SQL = (
    "SELECT seq, type, unit_code, time_window, subject, payload::text AS payload, created_at "
    "FROM events WHERE seq > $1 AND type = ANY($2::text[]) ORDER BY seq LIMIT $3"
)


def round_events(n_events: int, n_units: int, moment: str) -> list[NewEvent]:
    """`n_events` kpi events over `n_units` units, each unit's events together."""
    out: list[NewEvent] = []
    for i in range(n_events):
        unit = str(25000 + i * n_units // n_events)
        window, kpi = WINDOWS[i % len(WINDOWS)], KPIS[(i // len(WINDOWS)) % len(KPIS)]
        value = (i % 97) / 97
        payload = {
            "unit": unit,
            "window": window,
            "as_of": moment,
            "kpi": {
                "id": kpi,
                "value": value,
                "numerator": i % 97,
                "denominator": 97,
                "target": 0.8,
                "status": "ok" if value >= 0.8 else "bad",
            },
        }
        out.append(NewEvent("kpi", payload, unit, window, kpi))
    return out


async def per_row_insert(conn: asyncpg.Connection, events: list[NewEvent]) -> None:
    async with conn.transaction():
        await conn.execute(_LOCK)
        doc = json.dumps(
            [
                {
                    "ord": i,
                    "type": e.type,
                    "unit_code": e.unit_code,
                    "time_window": e.time_window,
                    "subject": e.subject,
                    "payload": e.payload,
                }
                for i, e in enumerate(events)
            ],
            ensure_ascii=False,
        )
        seqs = sorted(r[0] for r in await conn.fetch(_PER_ROW_INSERT, doc))
        await conn.execute("SELECT pg_notify('ioc_events', $1)", str(seqs[-1]))


async def per_row_copy(conn: asyncpg.Connection, events: list[NewEvent]) -> None:
    async with conn.transaction():
        await conn.execute(_LOCK)
        last = await conn.fetchval(
            "SELECT setval('event_seq', nextval('event_seq') + $1 - 1)", len(events)
        )
        first = last - len(events) + 1
        await conn.copy_records_to_table(
            "events",
            columns=["seq", "type", "unit_code", "time_window", "subject", "payload"],
            records=[
                (first + i, e.type, e.unit_code, e.time_window, e.subject, json.dumps(e.payload))
                for i, e in enumerate(events)
            ],
        )
        await conn.execute("SELECT pg_notify('ioc_events', $1)", str(last))


_VIEW_SQL = (
    "SELECT seq, type, unit_code, time_window, subject, payload::text AS payload, created_at "
    "FROM event_log WHERE last_seq > $1 AND seq > $1 AND type = ANY($2::text[]) "
    "ORDER BY last_seq, seq LIMIT $3"
)
_TYPES = ["kpi", "alert"]


async def read_rows(conn: asyncpg.Connection, since: int, expect: int) -> float:
    """Seconds to read `expect` events after `since` as the live hub does: stored rows,
    unpacked in Python (payloads parsed)."""
    start = time.perf_counter()
    got = 0
    while got < expect:
        _, events = await read_runs_since(conn, since, types=_TYPES, runs=128)
        got += len(events)
        since = events[-1].seq
    assert got == expect, (got, expect)
    return time.perf_counter() - start


async def read_pages(conn: asyncpg.Connection, sql: str, since: int, expect: int) -> float:
    """Seconds to read `expect` events after `since` in pages of 1,000 events, payloads
    parsed (json.loads, as the hub did before record batches)."""
    start = time.perf_counter()
    got = 0
    while got < expect:
        rows = await conn.fetch(sql, since, _TYPES, min(1000, expect - got))
        payloads = [json.loads(r["payload"]) for r in rows]
        got += len(payloads)
        since = rows[-1]["seq"]
    assert got == expect, (got, expect)
    return time.perf_counter() - start


def ms(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, statistics.quantiles(values, n=10)[-1] * 1000


async def main(args: argparse.Namespace) -> None:
    server_url = os.environ.get("IOC_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    name = f"ioc_bench_events_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    db = Database(url, pool_size=2)
    try:
        await upgrade(url)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        times: dict[str, list[float]] = {"packed": [], "per_row_insert": [], "per_row_copy": []}
        reads: dict[str, list[float]] = {"packed_rows": [], "packed_view": [], "per_row": []}

        async def packed(events: list[NewEvent]) -> None:
            async with db.session() as session:  # commits on exit
                await publish(session, events)

        def raw(
            write: Callable[[asyncpg.Connection, list[NewEvent]], Awaitable[None]],
        ) -> Callable[[list[NewEvent]], Awaitable[None]]:
            return lambda events: write(conn, events)

        ways: dict[str, Callable[[list[NewEvent]], Awaitable[None]]] = {
            "packed": packed,  # through the app's session (SQLAlchemy), as the engine does
            "per_row_insert": raw(per_row_insert),
            "per_row_copy": raw(per_row_copy),
        }
        for r in range(args.warmup + args.rounds):
            # rotate the order so that no way always runs first (or after the same one)
            names = list(ways)
            names = names[r % 3 :] + names[: r % 3]
            for way in names:
                events = round_events(args.events, args.units, f"2026-11-27T10:{r % 60:02d}:00")
                async with db.session() as session:
                    before = await last_seq(session)
                start = time.perf_counter()
                await ways[way](events)
                took = time.perf_counter() - start
                if r >= args.warmup:
                    times[way].append(took)
                    if way == "packed":
                        n = args.events
                        reads["packed_rows"].append(await read_rows(conn, before, n))
                        reads["packed_view"].append(await read_pages(conn, _VIEW_SQL, before, n))
                    elif way == "per_row_copy":
                        reads["per_row"].append(
                            await read_pages(conn, _OLD_TAIL_SQL, before, args.events)
                        )
        rows = await conn.fetchval("SELECT count(*) FROM events")
        await conn.close()
        figures: dict[str, list[Any]] = {}
        print(
            f"round: {args.events} kpi events over {args.units} units, one transaction; "
            f"{args.rounds} rounds after {args.warmup} warm-up; table ends with {rows} rows"
        )
        for way, values in times.items():
            p50, p90 = ms(values)
            figures[f"events.publish_{way}_ms"] = [round(p50, 2), "ms"]
            print(f"events.publish_{way}: {p50:.1f} ms  (p90 {p90:.1f} ms)")
        base = statistics.median(times["per_row_insert"])
        copy = statistics.median(times["per_row_copy"])
        pack = statistics.median(times["packed"])
        print(f"events.publish_packed_vs_per_row_insert: {pack / base:.2f} ratio")
        print(f"events.publish_packed_vs_per_row_copy: {pack / copy:.2f} ratio")
        for way, values in reads.items():
            p50, p90 = ms(values)
            figures[f"events.read_{way}_ms"] = [round(p50, 2), "ms"]
            print(f"events.read_{way}: {p50:.1f} ms  (p90 {p90:.1f} ms)")
        print("BENCH_JSON " + json.dumps({"figures": figures}))
    finally:
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4200)
    parser.add_argument("--units", type=int, default=123)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
