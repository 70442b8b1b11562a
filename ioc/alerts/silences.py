"""Silences: mute notifications of a rule and/or a unit's subtree until a time, with a reason.

Silences act where notifications are sent (the sender defers a silenced notification to the
silence's end, and the evaluator sends no reminders while silenced), so the alert's state
stays true on screens while people are not paged; when the silence ends, what is still
firing is notified.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.alerts.models import SilenceIn
from ioc.errors import Invalid, NotFound
from ioc.units import subtree_sql

SILENCE_SELECT = """
SELECT s.id, s.rule_id AS rule, s.unit_code AS unit, s.starts_at, s.ends_at AS until, s.reason,
       s.created_by, s.created_at, s.expired_by,
       (s.starts_at <= clock_timestamp() AND s.ends_at > clock_timestamp()) AS active,
       coalesce(s.unit_code, r.unit_code) AS scope_unit
FROM alert_silences s LEFT JOIN alert_rules r ON r.id = s.rule_id
"""


def _row(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


async def create_silence(session: AsyncSession, body: SilenceIn, *, by: str) -> dict[str, Any]:
    """Store a silence starting now; `until` must be in the future."""
    now = datetime.now().astimezone()
    if body.until <= now:
        raise Invalid(
            "`until` is in the past",
            errors=[{"field": "until", "message": "must be a future time"}],
        )
    silence_id = (
        await session.execute(
            text(
                "INSERT INTO alert_silences (rule_id, unit_code, starts_at, ends_at, reason, "
                "created_by) VALUES (:rule, :unit, :now, :until, :reason, :by) RETURNING id"
            ),
            {
                "rule": body.rule,
                "unit": body.unit,
                "now": now,
                "until": body.until,
                "reason": body.reason,
                "by": by,
            },
        )
    ).scalar_one()
    return await get_silence(session, int(silence_id))


async def get_silence(session: AsyncSession, silence_id: int) -> dict[str, Any]:
    row = (
        await session.execute(text(SILENCE_SELECT + " WHERE s.id = :id"), {"id": silence_id})
    ).first()
    if row is None:
        raise NotFound(f"silence {silence_id} does not exist")
    return _row(row)


async def list_silences(
    session: AsyncSession, scope_unit: str | None, *, include_expired: bool = False
) -> list[dict[str, Any]]:
    """Silences whose unit (or rule's unit) is in the scope's subtree, newest first."""
    rows = await session.execute(
        text(
            SILENCE_SELECT
            + f"""
            WHERE (CAST(:scope AS text) IS NULL OR coalesce(s.unit_code, r.unit_code) IN
                    {subtree_sql(":scope")})
              AND (:all OR s.ends_at > clock_timestamp())
            ORDER BY s.id DESC
            """
        ),
        {"scope": scope_unit, "all": include_expired},
    )
    return [_row(r) for r in rows]


async def expire_silence(session: AsyncSession, silence_id: int, *, by: str) -> dict[str, Any]:
    """End a silence now; notifications it deferred become due at once."""
    row = (
        await session.execute(
            text(
                "SELECT ends_at FROM alert_silences WHERE id = :id FOR UPDATE",
            ),
            {"id": silence_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"silence {silence_id} does not exist")
    now = datetime.now().astimezone()
    if row.ends_at > now:
        await session.execute(
            text("UPDATE alert_silences SET ends_at = :now, expired_by = :by WHERE id = :id"),
            {"now": now, "by": by, "id": silence_id},
        )
        # The sender deferred silenced rows to exactly the silence's end.
        await session.execute(
            text(
                "UPDATE alert_notifications SET next_attempt_at = :now "
                "WHERE status = 'pending' AND next_attempt_at = :old_end"
            ),
            {"now": now, "old_end": row.ends_at},
        )
    return await get_silence(session, silence_id)
