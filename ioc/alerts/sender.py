"""Draining the outbox: silence → dedup/staleness → group → send with retry → record.

Phase 1 (one short transaction): due rows are locked, each passes the stages below, and
the survivors get a `message_id` (one per recipient group; kept across retries). Phase 2
sends without holding a transaction. Phase 3 records every attempt. A crash between 2 and
3 resends the same message id (at-least-once; receivers deduplicate on it).

Stages per row:
- silenced now → deferred to the silence's end (then sent if still relevant);
- a firing/reminder whose alert has since resolved (or moved to a new episode) → skipped;
- a reminder of an acknowledged alert, or to a recipient the firing notice has not yet
  reached → skipped;
- a resolved notice to a recipient never told the alert fired → skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.alerts.notify import DeliveryError, Message, Notification, SmtpUnset, send
from ioc.db import Database
from ioc.settings import Settings
from ioc.units import within_sql

log = logging.getLogger("ioc.alerts.sender")

DUE_SQL = f"""
SELECT n.id, n.notification_id, n.alert_id, n.episode, n.kind, n.channel, n.recipient,
       n.payload, n.message_id, n.attempts, n.created_at,
       a.state AS alert_state, a.episode AS alert_episode, r.webhook_secret,
       (SELECT max(s.ends_at) FROM alert_silences s
        WHERE s.starts_at <= :now AND s.ends_at > :now
          AND (s.rule_id IS NULL OR s.rule_id = a.rule_id)
          AND (s.unit_code IS NULL OR {within_sql("s.unit_code", "a.unit_code")})
       ) AS silenced_until,
       EXISTS (SELECT 1 FROM alert_notifications p
               WHERE p.alert_id = n.alert_id AND p.episode = n.episode
                 AND p.channel = n.channel AND p.recipient = n.recipient
                 AND p.kind IN ('firing', 'reminder') AND p.status = 'sent') AS told
FROM alert_notifications n
JOIN alerts a ON a.id = n.alert_id
JOIN alert_rules r ON r.id = a.rule_id
WHERE n.status = 'pending' AND n.next_attempt_at <= :now
ORDER BY n.id
LIMIT :limit
FOR UPDATE OF n SKIP LOCKED
"""


@dataclass
class SendRound:
    """Outcome counts of one sender round (per outbox row)."""

    sent: int = 0
    errors: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    smtp_unset: int = 0  # e-mail messages not sent because IOC_SMTP_HOST is unset
    messages: list[str] = field(default_factory=list)


def _gate(row: Any) -> tuple[str, str] | None:
    """Why a due row must not be sent now: (outcome, detail), or None to send it."""
    if row.silenced_until is not None:
        return "silenced", f"silenced until {row.silenced_until.isoformat()}"
    active = row.alert_state in ("firing", "acknowledged") and row.alert_episode == row.episode
    if row.kind in ("firing", "reminder") and not active:
        return "skipped", "the alert resolved before this could be sent"
    if row.kind == "reminder" and row.alert_state == "acknowledged":
        return "skipped", "acknowledged: no more reminders"
    if row.kind == "reminder" and not row.told:
        # the firing notice itself is still on its way (retrying, or deferred by a silence)
        return "skipped", "the firing notice has not reached this recipient yet"
    if row.kind == "resolved" and not row.told:
        return "skipped", "this recipient was never told the alert fired"
    return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


async def _attempts(session: AsyncSession, attempts: list[dict[str, Any]]) -> None:
    """Record attempts (one row each: notification, message, outcome, detail, latency)."""
    if attempts:
        await session.execute(
            text(
                """
                INSERT INTO alert_delivery_attempts
                    (notification_pk, message_id, outcome, detail, latency_ms, at)
                SELECT a.pk, a.mid, a.outcome, a.detail, a.ms, clock_timestamp()
                FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS a(pk bigint, mid text,
                    outcome text, detail text, ms integer)
                """
            ),
            {"rows": _json(attempts)},
        )


async def claim(
    session: AsyncSession, now: datetime, settings: Settings, out: SendRound, *, limit: int = 500
) -> list[Message]:
    """Phase 1: gate the due rows and form the messages to send now (set-based writes)."""
    rows = (await session.execute(text(DUE_SQL), {"now": now, "limit": limit})).all()
    groups: dict[tuple[str, ...], list[Any]] = defaultdict(list)
    attempts: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    skipped: list[int] = []
    for row in rows:
        gated = _gate(row)
        if gated is None:
            key = (row.message_id,) if row.message_id else (row.channel, row.recipient)
            groups[key].append(row)
            continue
        outcome, detail = gated
        metrics.ALERT_NOTIFICATIONS.labels(row.channel, outcome).inc()
        if outcome == "silenced":
            deferred.append({"id": row.id, "until": row.silenced_until})
        else:
            skipped.append(row.id)
        attempts.append({"pk": row.id, "mid": row.message_id, "outcome": outcome, "detail": detail})
    out.deferred += len(deferred)
    out.skipped += len(skipped)
    if deferred:
        await session.execute(
            text(
                """
                UPDATE alert_notifications n SET next_attempt_at = d.until, message_id = NULL
                FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS d(id bigint, until timestamptz)
                WHERE n.id = d.id
                """
            ),
            {"rows": _json(deferred)},
        )
    if skipped:
        await session.execute(
            text("UPDATE alert_notifications SET status = 'skipped' WHERE id = ANY(:ids)"),
            {"ids": skipped},
        )
    await _attempts(session, attempts)
    wait = timedelta(seconds=settings.alerts_group_wait_seconds)
    messages: list[Message] = []
    assigned: list[dict[str, Any]] = []
    for members in groups.values():
        message_id = members[0].message_id
        if message_id is None:
            # Hold a new group until its oldest row waited `group_wait`, so rules firing
            # together reach the recipient as one message.
            if min(m.created_at for m in members) > now - wait:
                continue
            message_id = f"ioc-alert-{uuid.uuid4()}"
            assigned.extend({"id": m.id, "mid": message_id} for m in members)
        messages.append(
            Message(
                message_id=message_id,
                channel=members[0].channel,
                recipient=members[0].recipient,
                notifications=[
                    Notification(m.id, m.notification_id, m.kind, dict(m.payload)) for m in members
                ],
                secrets=sorted({m.webhook_secret for m in members}),
            )
        )
    if assigned:
        await session.execute(
            text(
                """
                UPDATE alert_notifications n SET message_id = m.mid
                FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS m(id bigint, mid text)
                WHERE n.id = m.id
                """
            ),
            {"rows": _json(assigned)},
        )
    return messages


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, times a random 0.5…1."""
    delay = min(
        settings.alerts_retry_max_seconds,
        settings.alerts_retry_base_seconds * 2.0 ** (attempts - 1),
    )
    return delay * (0.5 + random.random() / 2)


async def record(
    session: AsyncSession,
    message: Message,
    now: datetime,
    settings: Settings,
    out: SendRound,
    *,
    error: DeliveryError | None,
    detail: str,
    seconds: float,
) -> None:
    """Phase 3: the outcome of one message on all its rows, and an attempt row each."""
    ids = [n.pk for n in message.notifications]
    if error is None:
        await session.execute(
            text(
                "UPDATE alert_notifications SET status = 'sent', sent_at = :now, "
                "attempts = attempts + 1, last_error = NULL WHERE id = ANY(:ids)"
            ),
            {"now": now, "ids": ids},
        )
        outcomes = dict.fromkeys(ids, "sent")
    else:
        # One retry time per message: its rows travel together (same message id).
        attempts_so_far = max(
            (
                await session.execute(
                    text("SELECT attempts FROM alert_notifications WHERE id = ANY(:ids)"),
                    {"ids": ids},
                )
            ).scalars()
        )
        retry_at = now + timedelta(seconds=backoff_seconds(attempts_so_far + 1, settings))
        rows = await session.execute(
            text(
                """
                UPDATE alert_notifications SET attempts = attempts + 1, last_error = :err,
                    next_attempt_at = :retry_at,
                    status = CASE WHEN :permanent OR attempts + 1 >= :max THEN 'failed'
                        ELSE status END
                WHERE id = ANY(:ids)
                RETURNING id, status
                """
            ),
            {
                "err": error.detail,
                "retry_at": retry_at,
                "permanent": error.permanent,
                "max": settings.alerts_max_attempts,
                "ids": ids,
            },
        )
        outcomes = {r.id: ("failed" if r.status == "failed" else "error") for r in rows}
    for outcome in outcomes.values():
        metrics.ALERT_NOTIFICATIONS.labels(message.channel, outcome).inc()
        if outcome == "sent":
            out.sent += 1
        elif outcome == "failed":
            out.failed += 1
        else:
            out.errors += 1
    ms = int(seconds * 1000)
    await _attempts(
        session,
        [
            {"pk": pk, "mid": message.message_id, "outcome": o, "detail": detail, "ms": ms}
            for pk, o in outcomes.items()
        ],
    )


async def send_round(
    db: Database, settings: Settings, client: httpx.AsyncClient, now: datetime
) -> SendRound:
    """Claim, send (concurrently: one slow endpoint never delays another), record."""
    out = SendRound()
    async with db.session() as session:
        messages = await claim(session, now, settings, out)

    async def one(message: Message) -> None:
        error: DeliveryError | None = None
        try:
            detail, seconds = await send(message, settings, client)
            metrics.ALERT_DELIVERY_SECONDS.labels(message.channel).observe(seconds)
        except SmtpUnset as exc:  # the sender service says so once, not per message
            error, detail, seconds = exc, exc.detail, 0.0
            out.smtp_unset += 1
        except DeliveryError as exc:
            error, detail, seconds = exc, exc.detail, 0.0
            log.warning(
                "alert message %s to %s failed: %s",
                message.message_id,
                message.recipient,
                exc.detail,
            )
        async with db.session() as session:
            await record(
                session,
                message,
                datetime.now(now.tzinfo),
                settings,
                out,
                error=error,
                detail=detail,
                seconds=seconds,
            )
        out.messages.append(message.message_id)

    await asyncio.gather(*(one(m) for m in messages))
    return out
