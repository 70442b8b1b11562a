"""What a subscription receives: loading its target, matching events, reading the log.

The same selection is written twice on purpose — once in SQL (a worker behind the log
reads its events from PostgreSQL) and once in Python (the leader's tail pushes new events
to the workers that are caught up, so N subscriptions cost one read of the log, not N).
`tests/feeds/test_delivery.py::test_filters_rotation_replay_and_pause` delivers the same
filtered events through both paths (live, then replayed from the log).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg

from ioc.events import LAST_SEQ_SQL
from ioc.feeds.models import DeliveryTarget

Conn = asyncpg.Pool | asyncpg.Connection


@dataclass(slots=True)
class FeedEvent:
    seq: int
    type: str
    unit_code: str | None
    subject: str | None
    severity: str | None  # alert events: payload.alert.severity
    units: list[str] | None  # document events: every unit the document concerns
    payload: str  # jsonb as text: embedded verbatim in the body, never re-parsed
    body: bytes | None = None  # built once, shared by every subscription it goes to


def webhook_id(sub_id: uuid.UUID, seq: int, epoch: int) -> str:
    """Stable per (subscription, event, replay epoch): retries reuse it, a replay does not."""
    base = f"msg_{sub_id.hex}_{seq}"
    return base if epoch == 0 else f"{base}_r{epoch}"


def body_of(event: FeedEvent) -> bytes:
    """`{"type", "seq", "unit", "data"}` (CONTRACT §7), the payload embedded as stored."""
    if event.body is None:
        head = json.dumps(
            {"type": event.type, "seq": event.seq, "unit": event.unit_code}, ensure_ascii=False
        )
        event.body = (head[:-1] + ', "data": ' + event.payload + "}").encode()
    return event.body


def matches(target: DeliveryTarget, event: FeedEvent) -> bool:
    """The Python twin of `_EVENTS_SQL`'s WHERE clause."""
    if event.type not in target.topics:
        return False
    in_unit = event.unit_code in target.units or (
        event.type == "document" and any(u in target.units for u in event.units or ())
    )
    if not in_unit:
        return False
    if event.type == "kpi" and target.kpi_ids is not None:
        return event.subject in target.kpi_ids
    if event.type == "alert" and target.severities is not None:
        return event.severity in target.severities
    return True


_TARGET_SQL = """
    SELECT id, unit_code, url, topics, kpi_ids, severities, contact_email, status, cursor_seq,
        replay_epoch, attempts, first_failure_at, next_attempt_at, secret, previous_secret,
        previous_secret_expires_at,
        ARRAY(SELECT descendant_code FROM unit_closure WHERE ancestor_code = s.unit_code)
            AS units
    FROM feed_subscriptions s WHERE id = $1
"""

_COLUMNS = """
    e.seq, e.type, e.unit_code, e.subject, e.payload->'alert'->>'severity' AS severity,
    CASE WHEN e.type = 'document' THEN e.payload->'units' END::text AS units,
    e.payload::text AS payload
"""

# A worker's own read: its events in (pos, bound], one per seq from `event_log`; the
# `last_seq`/`first_seq` bounds and the (last_seq, seq) order keep it an index range scan
# that stops at the LIMIT (ioc.events explains).
_EVENTS_SQL = f"""
    SELECT {_COLUMNS}
    FROM event_log e
    WHERE e.last_seq > $1 AND e.seq > $1 AND e.first_seq <= $2 AND e.seq <= $2
      AND e.type = ANY($3::text[])
      AND (e.unit_code IN (SELECT descendant_code FROM unit_closure WHERE ancestor_code = $4)
           OR (e.type = 'document' AND e.payload->'units' ?| ARRAY(
                SELECT descendant_code FROM unit_closure WHERE ancestor_code = $4)))
      AND ($5::text[] IS NULL OR e.type <> 'kpi' OR e.subject = ANY($5::text[]))
      AND ($6::text[] IS NULL OR e.type <> 'alert'
           OR e.payload->'alert'->>'severity' = ANY($6::text[]))
    ORDER BY e.last_seq, e.seq LIMIT $7
"""

# The leader's tail: every event after `head`. seq order is commit order, so the last seq
# returned is a consistent prefix of the log.
_TAIL_SQL = (
    f"SELECT {_COLUMNS} FROM event_log e WHERE e.last_seq > $1 AND e.seq > $1 "
    "ORDER BY e.last_seq, e.seq LIMIT $2"
)


def _frozen(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


async def load_target(conn: Conn, sub_id: uuid.UUID) -> DeliveryTarget | None:
    row = await conn.fetchrow(_TARGET_SQL, sub_id)
    if row is None:
        return None
    return DeliveryTarget(
        id=row["id"],
        unit_code=row["unit_code"],
        units=frozenset(row["units"]),
        url=row["url"],
        topics=frozenset(row["topics"]),
        kpi_ids=_frozen(row["kpi_ids"]),
        severities=_frozen(row["severities"]),
        contact_email=row["contact_email"],
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_expires_at=row["previous_secret_expires_at"],
        status=row["status"],
        cursor_seq=row["cursor_seq"],
        replay_epoch=row["replay_epoch"],
        attempts=row["attempts"],
        first_failure_at=row["first_failure_at"],
        next_attempt_at=row["next_attempt_at"],
    )


def _event(row: asyncpg.Record) -> FeedEvent:
    units = json.loads(row["units"]) if row["units"] else None
    return FeedEvent(
        seq=row["seq"],
        type=row["type"],
        unit_code=row["unit_code"],
        subject=row["subject"],
        severity=row["severity"],
        units=units if isinstance(units, list) else None,
        payload=row["payload"],
    )


async def fetch_events(
    conn: Conn, target: DeliveryTarget, after: int, bound: int, limit: int
) -> list[FeedEvent]:
    """The target's events with `after < seq <= bound`, in order, at most `limit`."""
    rows = await conn.fetch(
        _EVENTS_SQL,
        after,
        bound,
        sorted(target.topics),
        target.unit_code,
        None if target.kpi_ids is None else sorted(target.kpi_ids),
        None if target.severities is None else sorted(target.severities),
        limit,
    )
    return [_event(r) for r in rows]


async def tail_events(conn: Conn, after: int, limit: int) -> list[FeedEvent]:
    """Every event after `after`, in order, at most `limit`."""
    return [_event(r) for r in await conn.fetch(_TAIL_SQL, after, limit)]


async def log_head(conn: Conn) -> int:
    return int(await conn.fetchval(LAST_SEQ_SQL))
