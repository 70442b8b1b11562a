"""What a subscription receives: loading its target, matching events, reading the log.

A worker behind the log reads its topics and units from the log (`ioc.events.read_since`),
then keeps what `matches` its KPI and severity filters; the leader's tail reads every new
event once and pushes to each caught-up worker what `matches` it, so N subscriptions cost
one read of the log, not N. `tests/feeds/test_delivery.py::test_filters_rotation_replay_and_pause`
delivers the same filtered events through both paths (live, then replayed from the log).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg

from ioc.events import Event, last_seq, read_since
from ioc.feeds.models import DeliveryTarget
from ioc.units import subtree_sql

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
    """`{"type", "seq", "unit", "data"}` (docs/api.md §7), the payload embedded as stored."""
    if event.body is None:
        head = json.dumps(
            {"type": event.type, "seq": event.seq, "unit": event.unit_code}, ensure_ascii=False
        )
        event.body = (head[:-1] + ', "data": ' + event.payload + "}").encode()
    return event.body


def matches(target: DeliveryTarget, event: FeedEvent) -> bool:
    """Whether the subscription receives the event: its topics, units and filters."""
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


_TARGET_SQL = f"""
    SELECT id, unit_code, url, topics, kpi_ids, severities, contact_email, status, cursor_seq,
        replay_epoch, attempts, first_failure_at, next_attempt_at, secret, previous_secret,
        previous_secret_expires_at,
        ARRAY{subtree_sql("s.unit_code")} AS units
    FROM feed_subscriptions s WHERE id = $1
"""


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


def _feed_event(event: Event) -> FeedEvent:
    alert = event.payload.get("alert")
    units = event.payload.get("units") if event.type == "document" else None
    return FeedEvent(
        seq=event.seq,
        type=event.type,
        unit_code=event.unit_code,
        subject=event.subject,
        severity=_severity(alert.get("severity")) if isinstance(alert, dict) else None,
        units=units if isinstance(units, list) else None,
        payload=event.payload_json or "{}",
    )


def _severity(value: object) -> str | None:
    # as PostgreSQL's `payload->'alert'->>'severity'` reads it
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


async def fetch_events(
    conn: Conn, target: DeliveryTarget, after: int, bound: int, limit: int
) -> tuple[list[FeedEvent], int | None]:
    """The target's events with `after < seq <= bound`, in order, read `limit` events of its
    topics and units at a time; and the last seq read when the read was full (the next read
    starts there), None when the log was read up to `bound`."""
    events = await read_since(
        conn, after, upto=bound, types=sorted(target.topics), units=target.units, limit=limit
    )
    mine = [e for e in map(_feed_event, events) if matches(target, e)]
    return mine, (events[-1].seq if len(events) == limit else None)


async def tail_events(conn: Conn, after: int, limit: int) -> list[FeedEvent]:
    """Every event after `after`, in order, at most `limit`."""
    return [_feed_event(e) for e in await read_since(conn, after, limit=limit)]


async def log_head(conn: Conn) -> int:
    return await last_seq(conn)
