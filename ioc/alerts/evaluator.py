"""Evaluation: KPI events and a periodic tick move alerts through their lifecycle, and every
transition that must be told is written to the outbox in the same transaction.

One round (`evaluate_round`) is one transaction that locks the evaluator's cursor row, so two
evaluators (replicas, or a test calling `run_once()` twice at once) serialise, and what a
round decided — state, history, live events, outbox rows — commits or vanishes together.
A crash after commit loses nothing: the sender drains the outbox later.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.alerts.kpis import current_value, is_time_based, known_kpis
from ioc.alerts.rules import RULE_COLUMNS, Rule, rule_from_row
from ioc.alerts.service import SILENCED_SQL, alert_dicts, alert_event, record_transition
from ioc.alerts.state import ACTIVE, decide
from ioc.events import NewEvent, publish, read_since

log = logging.getLogger("ioc.alerts.evaluator")

OUTBOX_CHANNEL = "ioc_alert_outbox"

# Rules with the units they are evaluated for: the rule's unit, or each current direct child.
RULE_UNITS_SQL = f"""
SELECT {", ".join("r." + c.strip() for c in RULE_COLUMNS.split(","))}, t.target_unit
FROM alert_rules r
CROSS JOIN LATERAL (
    SELECT r.unit_code AS target_unit WHERE NOT r.each_child
    UNION ALL
    SELECT u.code FROM units u
    WHERE r.each_child AND u.parent_code = r.unit_code
      AND (u.valid_to IS NULL OR u.valid_to >= current_date)
) t
WHERE r.deleted_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of a KPI for a unit; `error` set when it could not be evaluated."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    target: float | None = None
    as_of: datetime | str | None = None
    error: str | None = None

    @classmethod
    def from_kpi(cls, kpi: dict[str, Any], as_of: Any = None) -> Observation:
        return cls(
            value=_num(kpi.get("value")),
            numerator=_num(kpi.get("numerator")),
            denominator=_num(kpi.get("denominator")),
            target=_num(kpi.get("target")),
            as_of=as_of,
        )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _as_of(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass
class Round:
    """What one evaluation round produced (for logs, metrics and tests)."""

    events: int = 0
    transitions: int = 0
    notifications: int = 0
    live: list[NewEvent] | None = None


async def _alert_for_update(session: AsyncSession, rule_id: int, unit: str, now: datetime) -> Any:
    await session.execute(
        text(
            "INSERT INTO alerts (rule_id, unit_code, state, since) VALUES (:r, :u, 'ok', :now) "
            "ON CONFLICT (rule_id, unit_code) DO NOTHING"
        ),
        {"r": rule_id, "u": unit, "now": now},
    )
    return (
        await session.execute(
            text("SELECT * FROM alerts WHERE rule_id = :r AND unit_code = :u FOR UPDATE"),
            {"r": rule_id, "u": unit},
        )
    ).one()


async def apply_observation(
    session: AsyncSession, rule: Rule, unit: str, obs: Observation, now: datetime, out: Round
) -> None:
    """Decide the alert's next state from one observation and persist everything it implies."""
    row = await _alert_for_update(session, rule.id, unit, now)
    decision = decide(
        rule.condition, row.state, row.pending_since, obs.value, now, error=obs.error is not None
    )
    changed = decision.state != row.state
    entering_fire = decision.state == "firing" and row.state not in ACTIVE
    episode = row.episode + 1 if entering_fire else row.episode
    params: dict[str, Any] = {
        "id": row.id,
        "state": decision.state,
        "changed": changed,
        "now": now,
        "pending_since": decision.pending_since,
        "entering_fire": entering_fire,
        "resolving": changed and decision.state == "resolved",
        "episode": episode,
        "error": obs.error,
        "value": obs.value,
        "numerator": obs.numerator,
        "denominator": obs.denominator,
        "target": obs.target,
        "as_of": _as_of(obs.as_of),
    }
    await session.execute(
        text(
            """
            UPDATE alerts SET
                state = :state,
                since = CASE WHEN :changed THEN :now ELSE since END,
                pending_since = :pending_since,
                fired_at = CASE WHEN :entering_fire THEN :now ELSE fired_at END,
                resolved_at = CASE WHEN :resolving THEN :now ELSE resolved_at END,
                episode = :episode,
                observed_at = :now,
                -- an evaluation error keeps the last known figures; no data clears them
                value = CASE WHEN CAST(:error AS text) IS NULL THEN :value ELSE value END,
                numerator = CASE WHEN CAST(:error AS text) IS NULL THEN :numerator
                    ELSE numerator END,
                denominator = CASE WHEN CAST(:error AS text) IS NULL THEN :denominator
                    ELSE denominator END,
                target = coalesce(:target, target),
                as_of = coalesce(:as_of, as_of),
                no_data_reason = CASE
                    WHEN CAST(:error AS text) IS NOT NULL THEN :error
                    WHEN :value IS NULL THEN 'no_data' END,
                acknowledged_by = CASE WHEN :entering_fire THEN NULL ELSE acknowledged_by END,
                acknowledged_at = CASE WHEN :entering_fire THEN NULL ELSE acknowledged_at END,
                ack_comment = CASE WHEN :entering_fire THEN NULL ELSE ack_comment END,
                last_notified_at = CASE WHEN :entering_fire THEN :now ELSE last_notified_at END,
                reminders = CASE WHEN :entering_fire THEN 0 ELSE reminders END
            WHERE id = :id
            """
        ),
        params,
    )
    if not changed:
        return
    out.transitions += 1
    metrics.ALERT_TRANSITIONS.labels(decision.state).inc()
    await record_transition(
        session,
        row.id,
        row.state,
        decision.state,
        value=obs.value if obs.error is None else row.value,
        episode=episode,
        at=now,
        comment=obs.error,
    )
    alert = (await alert_dicts(session, "a.id = :id", {"id": row.id}))[0]
    assert out.live is not None
    out.live.append(alert_event(alert))
    if decision.notify is not None:
        out.notifications += await enqueue(
            session, rule, alert, kind=decision.notify, episode=episode, now=now
        )


async def enqueue(
    session: AsyncSession,
    rule: Rule,
    alert: dict[str, Any],
    *,
    kind: str,
    episode: int,
    now: datetime,
    number: int | None = None,
) -> int:
    """One outbox row per recipient; the stable notification id makes a replay a no-op."""
    notification_id = f"alert-{alert['id']}-{episode}-{kind}" + (
        f"-{number}" if number is not None else ""
    )
    rows = [
        {
            "channel": r["channel"],
            "recipient": r.get("to") or r.get("url"),
        }
        for r in rule.recipients
    ]
    if not rows:
        return 0
    result = await session.execute(
        text(
            """
            INSERT INTO alert_notifications (notification_id, alert_id, episode, kind, channel,
                recipient, payload, created_at, next_attempt_at)
            SELECT :nid, :alert, :episode, :kind, r.channel, r.recipient,
                CAST(:payload AS jsonb), :now, :now
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(channel text, recipient text)
            ON CONFLICT (notification_id, channel, recipient) DO NOTHING
            """
        ),
        {
            "nid": notification_id,
            "alert": alert["id"],
            "episode": episode,
            "kind": kind,
            "payload": json.dumps(alert, ensure_ascii=False, default=str),
            "rows": json.dumps(rows, ensure_ascii=False),
            "now": now,
        },
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": OUTBOX_CHANNEL})
    return count


def _latest_per_key(events: list[Any]) -> dict[tuple[str, str, str], Any]:
    """Only the newest reading per (KPI, unit, window) matters: after a backlog, old values
    must not walk an alert through states it was never in now."""
    latest: dict[tuple[str, str, str], Any] = {}
    for event in events:
        if event.subject and event.unit_code and event.time_window:
            latest[(event.subject, event.unit_code, event.time_window)] = event
    return latest


async def _rule_units(
    session: AsyncSession, where: str = "true", params: dict[str, Any] | None = None
) -> list[tuple[Rule, str]]:
    rows = await session.execute(text(f"{RULE_UNITS_SQL} AND {where}"), params or {})
    return [(rule_from_row(r), r.target_unit) for r in rows]


async def process_events(
    session: AsyncSession, cursor: int, now: datetime, out: Round, *, batch: int = 1000
) -> int:
    """Evaluate the rules touched by KPI events after `cursor`; return the new cursor."""
    events = await read_since(session, cursor, limit=batch, types=["kpi"])
    if not events:
        return cursor
    out.events = len(events)
    latest = _latest_per_key(events)
    kpis = sorted({k[0] for k in latest})
    for rule, unit in await _rule_units(session, "r.kpi = ANY(:kpis)", {"kpis": kpis}):
        event = latest.get((rule.kpi, unit, rule.window))
        if event is None:
            continue
        kpi = event.payload.get("kpi") or {}
        obs = Observation.from_kpi(kpi, event.payload.get("as_of"))
        await apply_observation(session, rule, unit, obs, now, out)
    return max(e.seq for e in events)


async def _latest_logged(session: AsyncSession, rule: Rule, unit: str) -> Observation | None:
    row = (
        await session.execute(
            text(
                """
                SELECT payload FROM events
                WHERE unit_code = :u AND type = 'kpi' AND subject = :k AND time_window = :w
                ORDER BY seq DESC LIMIT 1
                """
            ),
            {"u": unit, "k": rule.kpi, "w": rule.window},
        )
    ).first()
    if row is None:
        return None
    return Observation.from_kpi(row.payload.get("kpi") or {}, row.payload.get("as_of"))


async def _engine_value(session: AsyncSession, rule: Rule, unit: str) -> Observation:
    try:
        # A savepoint: an engine query failing must not abort the whole evaluation round.
        async with session.begin_nested():
            kpi = await current_value(session, rule.kpi, unit, rule.window)
    except Exception as exc:  # the engine failing is "cannot evaluate", a state of its own
        log.warning("KPI %s for %s could not be evaluated: %s", rule.kpi, unit, exc)
        return Observation(value=None, error=f"error: {type(exc).__name__}")
    return Observation.from_kpi(kpi)


async def tick(session: AsyncSession, now: datetime, out: Round, *, recompute: bool) -> None:
    """What time alone changes: pending alerts reaching `for_seconds`, time-based KPIs
    (overdue counts), alerts never evaluated yet, and reminders."""
    pending = await _rule_units(
        session,
        "EXISTS (SELECT 1 FROM alerts a WHERE a.rule_id = r.id AND a.unit_code = t.target_unit "
        "AND a.state = 'pending')",
    )
    for rule, unit in pending:
        row = (
            await session.execute(
                text(
                    "SELECT value, numerator, denominator, target, as_of FROM alerts "
                    "WHERE rule_id = :r AND unit_code = :u"
                ),
                {"r": rule.id, "u": unit},
            )
        ).one()
        stored = Observation(row.value, row.numerator, row.denominator, row.target, row.as_of)
        await apply_observation(session, rule, unit, stored, now, out)
    unseen = await _rule_units(
        session,
        "NOT EXISTS (SELECT 1 FROM alerts a WHERE a.rule_id = r.id "
        "AND a.unit_code = t.target_unit)",
    )
    for rule, unit in unseen:
        # A new rule starts from the last KPI event already in the log, else asks the engine.
        obs = await _latest_logged(session, rule, unit) or await _engine_value(session, rule, unit)
        await apply_observation(session, rule, unit, obs, now, out)
    if recompute:
        timed = [kid for kid in known_kpis() if is_time_based(kid)]
        for rule, unit in await _rule_units(session, "r.kpi = ANY(:timed)", {"timed": timed}):
            obs = await _engine_value(session, rule, unit)
            await apply_observation(session, rule, unit, obs, now, out)
    await remind(session, now, out)


async def remind(session: AsyncSession, now: datetime, out: Round) -> None:
    """Reminders every `repeat_seconds` for alerts firing, not acknowledged, not silenced."""
    due = await session.execute(
        text(
            f"""
            SELECT a.id, a.episode, a.reminders, r.id AS rule_id FROM alerts a
            JOIN alert_rules r ON r.id = a.rule_id
            WHERE a.state = 'firing' AND r.deleted_at IS NULL AND r.repeat_seconds > 0
              AND a.last_notified_at + make_interval(secs => r.repeat_seconds) <= :now
              AND NOT {SILENCED_SQL}
            FOR UPDATE OF a
            """
        ),
        {"now": now},
    )
    for row in due.all():
        rule = rule_from_row(
            (
                await session.execute(
                    text(f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = :id"),
                    {"id": row.rule_id},
                )
            ).one()
        )
        number = row.reminders + 1
        await session.execute(
            text("UPDATE alerts SET reminders = :n, last_notified_at = :now WHERE id = :id"),
            {"n": number, "now": now, "id": row.id},
        )
        alert = (await alert_dicts(session, "a.id = :id", {"id": row.id}))[0]
        out.notifications += await enqueue(
            session, rule, alert, kind="reminder", episode=row.episode, now=now, number=number
        )


async def evaluate_round(
    session: AsyncSession, now: datetime, *, recompute: bool, batch: int = 1000
) -> Round:
    """One transaction's worth of evaluation (the caller commits)."""
    out = Round(live=[])
    cursor = (
        await session.execute(text("SELECT seq FROM alert_cursor WHERE id = 1 FOR UPDATE"))
    ).scalar_one()
    new_cursor = await process_events(session, int(cursor), now, out, batch=batch)
    if new_cursor != cursor:
        await session.execute(
            text("UPDATE alert_cursor SET seq = :s, updated_at = :now WHERE id = 1"),
            {"s": new_cursor, "now": now},
        )
    await tick(session, now, out, recompute=recompute)
    if out.live:
        await publish(session, out.live)
    return out


async def state_counts(session: AsyncSession) -> dict[str, int]:
    """How many alerts are in each state (for the `ioc_alerts_alerts` gauge)."""
    rows = await session.execute(
        text(
            "SELECT a.state, count(*) FROM alerts a JOIN alert_rules r ON r.id = a.rule_id "
            "WHERE r.deleted_at IS NULL GROUP BY a.state"
        )
    )
    return {r[0]: int(r[1]) for r in rows}
