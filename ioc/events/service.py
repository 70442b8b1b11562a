"""Append to the event log (`events` table) and purge it; `read.py` reads it.

Guarantees:
- `seq` is one increasing number across every process sharing the database.
- `seq` order is commit order: `publish()` takes a transaction-level advisory lock before
  drawing from the sequence, so a reader that has seen `seq = N` will never later find a
  committed event with `seq < N`. Event writers are few and their transactions short.
- A `NOTIFY ioc_events, '<max seq>'` is queued in the same transaction, so listeners hear of
  the events exactly when (and only if) they are committed. The payload is a number, far
  below PostgreSQL's 8,000-byte limit; listeners read the rows themselves.
- Storage packs, reading does not: a row of `events` holds a run of consecutive events of one
  (type, unit_code) (`n` of them, seqs `seq .. last_seq`, the others' fields in `items`), one
  row instead of thousands per engine round. Readers see one event per seq (`read.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ioc.events.channels import EVENTS_CHANNEL

# Arbitrary constant key of the advisory lock serialising event writers.
_EVENT_WRITER_LOCK = 0x10C_E7E7
# Longest run stored in one row: a reader's page parses every row it touches whole, so a
# huge run (a backlog of one unit's records) is cut into rows it can page through.
_MAX_RUN = 500
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class NewEvent(NamedTuple):
    """An event to append. `unit_code` is the unit it is about (scope checks use it).

    A named tuple: the KPI engine builds ~4,200 per round, and a frozen dataclass costs
    twice as much to construct."""

    type: str
    payload: dict[str, Any]
    unit_code: str | None = None
    time_window: str | None = None
    subject: str | None = None


Executor = AsyncSession | AsyncConnection


def _runs(events: list[NewEvent]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the maximal runs of one (type, unit_code), at most
    `_MAX_RUN` long."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(events) + 1):
        if (
            i == len(events)
            or i - start == _MAX_RUN
            or events[i].type != events[start].type
            or events[i].unit_code != events[start].unit_code
        ):
            runs.append((start, i))
            start = i
    return runs


def _json(value: object) -> str:
    # default=str and passthrough datetimes: the same text `json.dumps(default=str)` gave
    # before for non-JSON values, so payloads do not change shape with the storage.
    return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()


async def publish(db: Executor, events: list[NewEvent]) -> list[int]:
    """Append `events` in the caller's transaction; return their seqs. Commit makes them visible.

    Each maximal run of consecutive events with the same (type, unit_code) is stored as one
    row (`n` events, seqs `seq .. seq + n - 1`); a lone event is a row of its own, as it
    always was. Readers see one event per seq through `event_log`."""
    if not events:
        return []
    # Every writer draws under the lock, so one nextval + setval reserves the whole batch
    # (a rollback leaves a gap, as nextval always did). The NOTIFY goes out only at commit.
    # One round trip: the sequence is read from the lock's row, so after the lock.
    last = int(
        (
            await db.execute(
                text(
                    "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(:k)) "
                    "SELECT s, pg_notify(:channel, s::text) FROM "
                    "(SELECT setval('event_seq', nextval('event_seq') + :n - 1) AS s "
                    "FROM lock) AS d"
                ),
                {"k": _EVENT_WRITER_LOCK, "channel": EVENTS_CHANNEL, "n": len(events)},
            )
        ).scalar_one()
    )
    first = last - len(events) + 1
    seqs: list[int] = []
    counts: list[int] = []
    types: list[str] = []
    payloads: list[str] = []
    units: list[str | None] = []
    windows: list[str | None] = []
    subjects: list[str | None] = []
    items: list[str | None] = []
    for start, stop in _runs(events):
        head = events[start]
        seqs.append(first + start)
        types.append(head.type)
        units.append(head.unit_code)
        counts.append(stop - start)
        if stop - start == 1:
            windows.append(head.time_window)
            subjects.append(head.subject)
            payloads.append(_json(head.payload))
            items.append(None)
        else:
            windows.append(None)
            subjects.append(None)
            payloads.append("{}")
            items.append(_json([[e.time_window, e.subject, e.payload] for e in events[start:stop]]))
    await db.execute(
        text(
            """
            INSERT INTO events (seq, type, unit_code, time_window, subject, payload, n, items)
            SELECT r.seq, r.type, r.unit_code, r.time_window, r.subject, r.payload::jsonb, r.n,
                   r.items
            FROM unnest(CAST(:seqs AS bigint[]), CAST(:types AS text[]), CAST(:units AS text[]),
                        CAST(:windows AS text[]), CAST(:subjects AS text[]),
                        CAST(:payloads AS text[]), CAST(:counts AS int[]),
                        CAST(:items AS text[]))
                AS r(seq, type, unit_code, time_window, subject, payload, n, items)
            """
        ),
        {
            "seqs": seqs,
            "types": types,
            "units": units,
            "windows": windows,
            "subjects": subjects,
            "payloads": payloads,
            "counts": counts,
            "items": items,
        },
    )
    return list(range(first, last + 1))


async def purge_before(db: Executor, cutoff: datetime) -> int:
    """Delete the rows created before `cutoff` (a row's events go together); return how
    many events they held."""
    result = await db.execute(
        text(
            "WITH d AS (DELETE FROM events WHERE created_at < :c RETURNING n) "
            "SELECT coalesce(sum(n), 0) FROM d"
        ),
        {"c": cutoff},
    )
    return int(result.scalar_one())
