"""Append to and read from the event log (`events` table).

Guarantees:
- `seq` is one increasing number across every process sharing the database.
- `seq` order is commit order: `publish()` takes a transaction-level advisory lock before
  drawing from the sequence, so a reader that has seen `seq = N` will never later find a
  committed event with `seq < N`. Event writers are few and their transactions short.
- A `NOTIFY ioc_events, '<max seq>'` is queued in the same transaction, so listeners hear of
  the events exactly when (and only if) they are committed. The payload is a number, far
  below PostgreSQL's 8,000-byte limit; listeners read the rows themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

EVENTS_CHANNEL = "ioc_events"
# Arbitrary constant key of the advisory lock serialising event writers.
_EVENT_WRITER_LOCK = 0x10C_E7E7


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `unit_code` is the unit it is about (scope checks use it)."""

    type: str
    payload: dict[str, Any]
    unit_code: str | None = None
    time_window: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    type: str
    unit_code: str | None
    time_window: str | None
    subject: str | None
    payload: dict[str, Any]
    created_at: datetime = field(compare=False)


Executor = AsyncSession | AsyncConnection


async def publish(db: Executor, events: list[NewEvent]) -> list[int]:
    """Append `events` in the caller's transaction; return their seqs. Commit makes them visible."""
    if not events:
        return []
    await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _EVENT_WRITER_LOCK})
    rows = await db.execute(
        text(
            """
            INSERT INTO events (seq, type, unit_code, time_window, subject, payload)
            SELECT nextval('event_seq'), e.type, e.unit_code, e.time_window, e.subject, e.payload
            FROM (
                SELECT * FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS r(
                    ord int, type text, unit_code text, time_window text, subject text,
                    payload jsonb)
                ORDER BY r.ord
            ) AS e
            RETURNING seq
            """
        ),
        {
            "events": json.dumps(
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
                default=str,
            )
        },
    )
    seqs = sorted(int(r[0]) for r in rows)
    await db.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": EVENTS_CHANNEL, "payload": str(seqs[-1])},
    )
    return seqs


async def read_since(
    db: Executor,
    since: int,
    *,
    limit: int = 1000,
    types: list[str] | None = None,
    units: list[str] | None = None,
) -> list[Event]:
    """Events with `seq > since`, in order; optionally only some types / units."""
    clauses = ["seq > :since"]
    params: dict[str, Any] = {"since": since, "limit": limit}
    if types is not None:
        clauses.append("type = ANY(:types)")
        params["types"] = types
    if units is not None:
        clauses.append("unit_code = ANY(:units)")
        params["units"] = units
    rows = await db.execute(
        text(
            "SELECT seq, type, unit_code, time_window, subject, payload, created_at FROM events "
            f"WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT :limit"
        ),
        params,
    )
    return [
        Event(
            seq=r.seq,
            type=r.type,
            unit_code=r.unit_code,
            time_window=r.time_window,
            subject=r.subject,
            payload=r.payload,
            created_at=r.created_at,
        )
        for r in rows
    ]


async def last_seq(db: Executor) -> int:
    """The highest committed seq (0 when the log is empty)."""
    value = (await db.execute(text("SELECT coalesce(max(seq), 0) FROM events"))).scalar_one()
    return int(value)


async def oldest_seq(db: Executor) -> int:
    """The lowest seq still retained (0 when the log is empty)."""
    value = (await db.execute(text("SELECT coalesce(min(seq), 0) FROM events"))).scalar_one()
    return int(value)


async def purge_before(db: Executor, cutoff: datetime) -> int:
    """Delete events created before `cutoff`; return how many."""
    result = await db.execute(text("DELETE FROM events WHERE created_at < :c"), {"c": cutoff})
    return int(result.rowcount)  # type: ignore[attr-defined]
