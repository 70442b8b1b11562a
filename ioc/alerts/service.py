"""Reading alerts, acknowledging them, their history, and silences. Services take a session
and only flush; the caller's unit of work commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.alerts.state import OPEN
from ioc.errors import Conflict, NotFound
from ioc.events import NewEvent, publish
from ioc.units import subtree_sql, within_sql

# A silence matches an alert when its rule (if set) is the alert's rule and its unit (if set)
# contains the alert's unit. Written once, used by listings, the evaluator and the sender.
SILENCED_SQL = f"""
EXISTS (
    SELECT 1 FROM alert_silences s
    WHERE s.starts_at <= :now AND s.ends_at > :now
      AND (s.rule_id IS NULL OR s.rule_id = a.rule_id)
      AND (s.unit_code IS NULL OR {within_sql("s.unit_code", "a.unit_code")})
)"""

ALERT_SELECT = f"""
SELECT a.id, a.rule_id, r.name AS rule_name, r.kpi, a.unit_code AS unit, u.name AS unit_name,
       r.time_window AS window, a.state, r.severity, a.value, a.numerator, a.denominator,
       r.op, r.threshold, coalesce(r.clear_threshold, r.threshold) AS clear_threshold,
       a.target, a.since, a.pending_since, a.fired_at, a.resolved_at, a.episode, a.as_of,
       a.observed_at, a.no_data_reason, a.acknowledged_by, a.acknowledged_at, a.ack_comment,
       {SILENCED_SQL} AS silenced
FROM alerts a
JOIN alert_rules r ON r.id = a.rule_id
JOIN units u ON u.code = a.unit_code
"""

SEVERITY_ORDER = "CASE r.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def alert_dicts(
    session: AsyncSession,
    where: str,
    params: dict[str, Any],
    *,
    order: str = "a.id",
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Alerts (JSON-ready dicts, the `alert` object of docs/api.md §5) matching a WHERE clause."""
    sql = f"{ALERT_SELECT} WHERE {where} ORDER BY {order} LIMIT :limit"
    rows = await session.execute(
        text(sql), {"now": datetime.now().astimezone(), **params, "limit": limit}
    )
    return [{k: _jsonable(v) for k, v in row._mapping.items()} for row in rows]


async def get_alert(session: AsyncSession, alert_id: int) -> dict[str, Any]:
    """One alert, or `NotFound`."""
    found = await alert_dicts(session, "a.id = :id", {"id": alert_id})
    if not found:
        raise NotFound(f"alert {alert_id} does not exist")
    return found[0]


async def list_open_alerts(session: AsyncSession, unit_code: str) -> list[dict[str, Any]]:
    """Alerts pending, firing, acknowledged or without data in the unit's subtree, most
    severe first (for screens' snapshots)."""
    return await alert_dicts(
        session,
        f"a.state = ANY(:open) AND r.deleted_at IS NULL AND a.unit_code IN {subtree_sql(':unit')}",
        {"open": list(OPEN), "unit": unit_code},
        order=f"{SEVERITY_ORDER}, a.since, a.id",
    )


async def list_alerts(
    session: AsyncSession,
    unit_code: str | None,
    *,
    states: list[str] | None = None,
    severity: str | None = None,
    rule_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Alerts in a unit's subtree (every unit when None), filtered; `since`/`until` bound the
    time the alert entered its current state."""
    clauses = ["a.state <> 'closed'"]
    params: dict[str, Any] = {}
    if unit_code is not None:
        clauses.append(f"a.unit_code IN {subtree_sql(':unit')}")
        params["unit"] = unit_code
    if states:
        clauses.append("a.state = ANY(:states)")
        params["states"] = states
    if severity:
        clauses.append("r.severity = :severity")
        params["severity"] = severity
    if rule_id is not None:
        clauses.append("a.rule_id = :rule")
        params["rule"] = rule_id
    if since is not None:
        clauses.append("a.since >= :since")
        params["since"] = since
    if until is not None:
        clauses.append("a.since < :until")
        params["until"] = until
    return await alert_dicts(
        session,
        " AND ".join(clauses),
        params,
        order=f"{SEVERITY_ORDER}, a.since DESC, a.id",
        limit=limit,
    )


async def record_transition(
    session: AsyncSession,
    alert_id: int,
    from_state: str | None,
    to_state: str,
    *,
    value: float | None,
    episode: int,
    at: datetime,
    actor: str | None = None,
    comment: str | None = None,
) -> None:
    await session.execute(
        text(
            """
            INSERT INTO alert_transitions
                (alert_id, at, from_state, to_state, value, episode, actor, comment)
            VALUES (:id, :at, :from_state, :to_state, :value, :episode, :actor, :comment)
            """
        ),
        {
            "id": alert_id,
            "at": at,
            "from_state": from_state,
            "to_state": to_state,
            "value": value,
            "episode": episode,
            "actor": actor,
            "comment": comment,
        },
    )


def alert_event(alert: dict[str, Any]) -> NewEvent:
    """The live `alert` event for an alert's new state (architecture §2)."""
    return NewEvent(
        type="alert",
        unit_code=alert["unit"],
        time_window=alert["window"],
        subject=str(alert["rule_id"]),
        payload={"alert": alert},
    )


async def acknowledge(
    session: AsyncSession, alert_id: int, *, by: str, comment: str | None
) -> dict[str, Any]:
    """Mark a firing alert acknowledged (who, when, comment): reminders stop, state shows it."""
    row = (
        await session.execute(
            text("SELECT state, value, episode FROM alerts WHERE id = :id FOR UPDATE"),
            {"id": alert_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    if row.state != "firing":
        raise Conflict(f"alert {alert_id} is {row.state}; only a firing alert can be acknowledged")
    now = datetime.now().astimezone()
    await session.execute(
        text(
            """
            UPDATE alerts SET state = 'acknowledged', since = :now, acknowledged_by = :by,
                acknowledged_at = :now, ack_comment = :comment
            WHERE id = :id
            """
        ),
        {"id": alert_id, "now": now, "by": by, "comment": comment},
    )
    await record_transition(
        session,
        alert_id,
        "firing",
        "acknowledged",
        value=row.value,
        episode=row.episode,
        at=now,
        actor=by,
        comment=comment,
    )
    alert = await get_alert(session, alert_id)
    await publish(session, [alert_event(alert)])
    return alert


async def alert_history(session: AsyncSession, alert_id: int) -> dict[str, Any]:
    """An alert with every transition and every notification attempt (docs/api.md §6)."""
    alert = await get_alert(session, alert_id)
    transitions = await session.execute(
        text(
            "SELECT at, from_state, to_state, value, episode, actor, comment "
            "FROM alert_transitions WHERE alert_id = :id ORDER BY at, id"
        ),
        {"id": alert_id},
    )
    deliveries = await session.execute(
        text(
            """
            SELECT n.notification_id, n.kind, n.channel, n.recipient, n.status, n.attempts,
                   n.created_at, n.sent_at, n.last_error, n.message_id,
                   coalesce(jsonb_agg(jsonb_build_object(
                       'at', t.at, 'outcome', t.outcome, 'detail', t.detail,
                       'latency_ms', t.latency_ms) ORDER BY t.at)
                       FILTER (WHERE t.id IS NOT NULL), '[]') AS attempts_log
            FROM alert_notifications n
            LEFT JOIN alert_delivery_attempts t ON t.notification_pk = n.id
            WHERE n.alert_id = :id
            GROUP BY n.id ORDER BY n.created_at, n.id
            """
        ),
        {"id": alert_id},
    )
    alert["transitions"] = [{k: _jsonable(v) for k, v in r._mapping.items()} for r in transitions]
    alert["notifications"] = [{k: _jsonable(v) for k, v in r._mapping.items()} for r in deliveries]
    return alert


async def unit_history(
    session: AsyncSession,
    unit_code: str | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Every transition of every alert in a unit's subtree (all units: None), newest first."""
    rows = await session.execute(
        text(
            f"""
            SELECT t.at, t.alert_id, a.rule_id, r.name AS rule_name, r.kpi, a.unit_code AS unit,
                   u.name AS unit_name, r.severity, t.from_state, t.to_state, t.value,
                   t.episode, t.actor, t.comment
            FROM alert_transitions t
            JOIN alerts a ON a.id = t.alert_id
            JOIN alert_rules r ON r.id = a.rule_id
            JOIN units u ON u.code = a.unit_code
            WHERE (CAST(:unit AS text) IS NULL OR a.unit_code IN {subtree_sql(":unit")})
              AND (CAST(:since AS timestamptz) IS NULL OR t.at >= :since)
              AND (CAST(:until AS timestamptz) IS NULL OR t.at < :until)
            ORDER BY t.at DESC, t.id DESC LIMIT :limit
            """
        ),
        {"unit": unit_code, "since": since, "until": until, "limit": limit},
    )
    return [{k: _jsonable(v) for k, v in r._mapping.items()} for r in rows]
