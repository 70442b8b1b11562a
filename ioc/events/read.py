"""Reading the event log: every reader (screens, alerts, feeds, operations) reads through here.

The paging rule, written once: a stored row of `events` holds a run of events (seqs `seq ..
last_seq`), rows never overlap, so `last_seq > cursor` finds the row a cursor stopped in
through its index, and ordering by `(last_seq, seq)` keeps that index order, so a LIMIT
stops early. A page may end inside a row; the next read, from the last seq returned, picks
up the rest. Seq order is commit order (`publish`), so a cursor never skips a later commit.

Two reads, for two kinds of reader:
- `read_since`: at most `limit` events, one per seq, filtered by type, unit, seq bound (the
  `event_log` view expands the runs in SQL: a LIMIT of events is exact). Alerts, replays,
  feeds.
- `read_runs_since`: whole stored runs, expanded here (orjson), several times cheaper for a
  reader that keeps up with a round of thousands of events (the live hub's tail).

Each takes a SQLAlchemy session or connection (the read joins its transaction) or an
asyncpg connection or pool.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ioc.db import driver_connection

# A session or connection of SQLAlchemy, or an asyncpg connection (pooled or not) or pool.
Reader = AsyncSession | AsyncConnection | asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    type: str
    unit_code: str | None
    time_window: str | None
    subject: str | None
    payload: dict[str, Any]
    created_at: datetime = field(compare=False)
    # The payload as stored (JSON text), for readers that pass it on verbatim (webhooks).
    payload_json: str | None = field(default=None, compare=False, repr=False)


async def _fetch(db: Reader, sql: str, *args: object) -> list[asyncpg.Record]:
    if isinstance(db, AsyncSession | AsyncConnection):
        db = await driver_connection(db)
    rows: list[asyncpg.Record] = await db.fetch(sql, *args)
    return rows


async def _fetchval(db: Reader, sql: str) -> int:
    rows = await _fetch(db, sql)
    return int(rows[0][0])


_COLUMNS = "seq, type, unit_code, time_window, subject, payload::text AS payload, created_at"


def _event(row: asyncpg.Record) -> Event:
    text: str = row["payload"]
    return Event(
        row["seq"],
        row["type"],
        row["unit_code"],
        row["time_window"],
        row["subject"],
        orjson.loads(text),
        row["created_at"],
        text,
    )


async def read_since(
    db: Reader,
    since: int,
    *,
    limit: int = 1000,
    types: Sequence[str] | None = None,
    units: Collection[str] | None = None,
    upto: int | None = None,
) -> list[Event]:
    """Events with `since < seq` (and `seq <= upto`), in seq order, at most `limit`.

    `types`: only these types. `units`: only events about one of these units — a `document`
    event is about every unit in its payload's `units` as well as its own `unit_code`.
    Fewer than `limit` events means the log (up to `upto`) has been read to its end."""
    clauses = ["last_seq > $1", "seq > $1"]
    args: list[object] = [since]
    if upto is not None:
        args.append(upto)
        clauses += [f"first_seq <= ${len(args)}", f"seq <= ${len(args)}"]
    if types is not None:
        args.append(list(types))
        clauses.append(f"type = ANY(${len(args)}::text[])")
    if units is not None:
        args.append(sorted(units))
        n = len(args)
        clauses.append(
            f"(unit_code = ANY(${n}::text[]) "
            f"OR (type = 'document' AND payload->'units' ?| ${n}::text[]))"
        )
    args.append(limit)
    sql = (
        f"SELECT {_COLUMNS} FROM event_log WHERE {' AND '.join(clauses)} "
        f"ORDER BY last_seq, seq LIMIT ${len(args)}"
    )
    return [_event(r) for r in await _fetch(db, sql, *args)]


async def read_runs_since(
    db: Reader, since: int, *, types: Sequence[str], runs: int
) -> tuple[int, list[Event]]:
    """The events with `seq > since` of the next `runs` stored runs of `types`, in seq order,
    and how many runs were read: fewer than `runs` means the log has been read to its end.

    A run holds at most 500 events, so a page is bounded; a round of the KPI engine (~4,200
    events in ~123 runs) is read in one query and parsed here, without the jsonb round trip
    of `read_since` (11 ms against 46 ms, benchmarks/events.py)."""
    rows = await _fetch(
        db,
        "SELECT seq, type, unit_code, time_window, subject, payload::text AS payload, items, "
        "created_at FROM events WHERE last_seq > $1 AND type = ANY($2::text[]) "
        "ORDER BY last_seq LIMIT $3",
        since,
        list(types),
        runs,
    )
    return len(rows), [event for row in rows for event in _unpack(row, since)]


def _unpack(row: asyncpg.Record, after: int) -> list[Event]:
    """The events with `seq > after` of one stored run."""
    seq: int = row["seq"]
    kind, unit, created = row["type"], row["unit_code"], row["created_at"]
    if row["items"] is None:
        if seq <= after:
            return []
        payload = orjson.loads(row["payload"])
        return [Event(seq, kind, unit, row["time_window"], row["subject"], payload, created)]
    return [
        Event(seq + i, kind, unit, window, subject, payload, created)
        for i, (window, subject, payload) in enumerate(orjson.loads(row["items"]))
        if seq + i > after
    ]


async def latest(db: Reader, *, type: str, unit: str, subject: str, window: str) -> Event | None:
    """The newest event of one (type, unit, subject, window), or None.

    A backward scan of the unit's stored rows (index on unit_code, seq), newest first:
    ordering by the row's first seq, then the event's, stops at the first row that holds it
    instead of expanding every row of the unit."""
    rows = await _fetch(
        db,
        f"SELECT {_COLUMNS} FROM event_log WHERE unit_code = $1 AND type = $2 "
        "AND subject = $3 AND time_window = $4 "
        "ORDER BY first_seq DESC, seq DESC LIMIT 1",
        unit,
        type,
        subject,
        window,
    )
    return _event(rows[0]) if rows else None


async def last_seq(db: Reader) -> int:
    """The highest committed seq (0 when the log is empty): one index probe."""
    return await _fetchval(db, "SELECT coalesce(max(last_seq), 0) FROM events")


async def oldest_seq(db: Reader) -> int:
    """The lowest seq still retained (0 when the log is empty): one index probe."""
    # The oldest row's first event is the oldest event: min(seq) of the table is exact.
    return await _fetchval(db, "SELECT coalesce(min(seq), 0) FROM events")
