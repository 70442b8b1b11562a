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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.alerts.readings import current_value, is_time_based, known_kpis
from ioc.alerts.rules import RULE_COLUMNS, RULE_TARGETS_SQL, Rule, rule_from_row
from ioc.alerts.service import SILENCED_SQL, alert_dicts, alert_event
from ioc.alerts.state import ACTIVE, decide
from ioc.collectors import failing_feeds
from ioc.events import ALERT_OUTBOX_CHANNEL, NewEvent, last_seq, latest, publish, read_since
from ioc.kpis import CATALOGUE

log = logging.getLogger("ioc.alerts.evaluator")

# Rules with the units they are evaluated for (see `rules.RULE_TARGETS_SQL`).
RULE_UNITS_SQL = f"""
SELECT {", ".join("r." + c.strip() for c in RULE_COLUMNS.split(","))}, t.target_unit
FROM alert_rules r
CROSS JOIN LATERAL ({RULE_TARGETS_SQL}) t
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


Item = tuple[Rule, str, Observation]
# (rule, alert dict, kind, episode, reminder number) of one notification to enqueue
Outgoing = tuple[Rule, dict[str, Any], str, int, int | None]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


async def _alerts_for_update(
    session: AsyncSession, pairs: list[tuple[int, str]], now: datetime
) -> dict[tuple[int, str], Any]:
    """The alert rows of these (rule, unit) pairs, created `ok` if new, locked: one INSERT
    and one SELECT whatever the number of pairs."""
    keys = _json([{"r": r, "u": u} for r, u in pairs])
    await session.execute(
        text(
            """
            INSERT INTO alerts (rule_id, unit_code, state, since)
            SELECT k.r, k.u, 'ok', :now FROM jsonb_to_recordset(CAST(:keys AS jsonb))
                AS k(r bigint, u text)
            ORDER BY k.r, k.u
            ON CONFLICT (rule_id, unit_code) DO NOTHING
            """
        ),
        {"keys": keys, "now": now},
    )
    rows = await session.execute(
        text(
            """
            SELECT a.* FROM alerts a
            JOIN jsonb_to_recordset(CAST(:keys AS jsonb)) AS k(r bigint, u text)
              ON a.rule_id = k.r AND a.unit_code = k.u
            ORDER BY a.id
            FOR UPDATE OF a
            """
        ),
        {"keys": keys},
    )
    return {(r.rule_id, r.unit_code): r for r in rows}


def _next_row(row: Any, rule: Rule, obs: Observation, now: datetime) -> tuple[dict[str, Any], Any]:
    """The alert row after one observation (all columns the evaluator owns), and the decision."""
    d = decide(rule.condition, row.state, row.pending_since, obs.value, now, error=bool(obs.error))
    changed = d.state != row.state
    entering_fire = d.state == "firing" and row.state not in ACTIVE
    keep = obs.error is not None  # an evaluation error keeps the last known figures
    new = {
        "id": row.id,
        "state": d.state,
        "since": now if changed else row.since,
        "pending_since": d.pending_since,
        "fired_at": now if entering_fire else row.fired_at,
        "resolved_at": now if changed and d.state == "resolved" else row.resolved_at,
        "episode": row.episode + 1 if entering_fire else row.episode,
        "observed_at": now,
        "value": row.value if keep else obs.value,
        "numerator": row.numerator if keep else obs.numerator,
        "denominator": row.denominator if keep else obs.denominator,
        "target": obs.target if obs.target is not None else row.target,
        "as_of": _as_of(obs.as_of) or row.as_of,
        "no_data_reason": obs.error or ("no_data" if obs.value is None else None),
        "acknowledged_by": None if entering_fire else row.acknowledged_by,
        "acknowledged_at": None if entering_fire else row.acknowledged_at,
        "ack_comment": None if entering_fire else row.ack_comment,
        "last_notified_at": now if entering_fire else row.last_notified_at,
        "reminders": 0 if entering_fire else row.reminders,
    }
    return new, d


UPDATE_SQL = """
UPDATE alerts a SET state = n.state, since = n.since, pending_since = n.pending_since,
    fired_at = n.fired_at, resolved_at = n.resolved_at, episode = n.episode,
    observed_at = n.observed_at, value = n.value, numerator = n.numerator,
    denominator = n.denominator, target = n.target, as_of = n.as_of,
    no_data_reason = n.no_data_reason, acknowledged_by = n.acknowledged_by,
    acknowledged_at = n.acknowledged_at, ack_comment = n.ack_comment,
    last_notified_at = n.last_notified_at, reminders = n.reminders
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS n(
    id bigint, state text, since timestamptz, pending_since timestamptz,
    fired_at timestamptz, resolved_at timestamptz, episode integer, observed_at timestamptz,
    value float8, numerator float8, denominator float8, target float8, as_of timestamptz,
    no_data_reason text, acknowledged_by text, acknowledged_at timestamptz, ack_comment text,
    last_notified_at timestamptz, reminders integer)
WHERE a.id = n.id
"""


async def _with_source_errors(session: AsyncSession, items: list[Item]) -> list[Item]:
    """A KPI whose feed's sources are all down cannot be evaluated: its reading becomes an
    error (the alert shows it; an error never fires, so the outage's end is no storm)."""
    failing = await failing_feeds(session)
    if not failing:
        return items
    out: list[Item] = []
    for rule, unit, obs in items:
        reason = failing.get(CATALOGUE[rule.kpi].feed) if rule.kpi in CATALOGUE else None
        out.append((rule, unit, replace(obs, error=reason) if reason and not obs.error else obs))
    return out


async def apply_observations(
    session: AsyncSession, items: list[Item], now: datetime, out: Round
) -> None:
    """Decide every alert's next state from one observation each and persist all it implies
    (state, history, live events, outbox) in a fixed number of statements."""
    if not items:
        return
    items = await _with_source_errors(session, items)
    rows = await _alerts_for_update(session, [(rule.id, unit) for rule, unit, _ in items], now)
    updates: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    notify: dict[int, tuple[Rule, str, int]] = {}
    for rule, unit, obs in items:
        row = rows[(rule.id, unit)]
        new, decision = _next_row(row, rule, obs, now)
        updates.append(new)
        if decision.state == row.state:
            continue
        metrics.ALERT_TRANSITIONS.labels(decision.state).inc()
        transitions.append(
            {
                "alert_id": row.id,
                "from_state": row.state,
                "to_state": decision.state,
                "value": new["value"],
                "episode": new["episode"],
                "comment": obs.error,
            }
        )
        if decision.notify is not None:
            notify[row.id] = (rule, decision.notify, new["episode"])
    await session.execute(text(UPDATE_SQL), {"rows": _json(updates)})
    if not transitions:
        return
    out.transitions += len(transitions)
    await session.execute(
        text(
            """
            INSERT INTO alert_transitions
                (alert_id, at, from_state, to_state, value, episode, comment)
            SELECT t.alert_id, :now, t.from_state, t.to_state, t.value, t.episode, t.comment
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(alert_id bigint,
                from_state text, to_state text, value float8, episode integer, comment text)
            """
        ),
        {"rows": _json(transitions), "now": now},
    )
    changed = await alert_dicts(
        session,
        "a.id = ANY(:ids)",
        {"ids": [t["alert_id"] for t in transitions]},
        limit=len(transitions),
    )
    assert out.live is not None
    out.live.extend(alert_event(a) for a in changed)
    outbox: list[Outgoing] = [
        (rule, alert, kind, episode, None)
        for alert in changed
        if alert["id"] in notify
        for rule, kind, episode in [notify[alert["id"]]]
    ]
    out.notifications += await enqueue(session, outbox, now=now)


async def enqueue(session: AsyncSession, outgoing: list[Outgoing], *, now: datetime) -> int:
    """One outbox row per (notification, recipient), in one statement; the stable
    notification id (alert, episode, kind, reminder number) makes a replay a no-op."""
    rows = [
        {
            "nid": f"alert-{alert['id']}-{episode}-{kind}"
            + (f"-{number}" if number is not None else ""),
            "alert": alert["id"],
            "episode": episode,
            "kind": kind,
            "channel": r["channel"],
            "recipient": r.get("to") or r.get("url"),
            "payload": alert,
        }
        for rule, alert, kind, episode, number in outgoing
        for r in rule.recipients
    ]
    if not rows:
        return 0
    result = await session.execute(
        text(
            """
            INSERT INTO alert_notifications (notification_id, alert_id, episode, kind, channel,
                recipient, payload, created_at, next_attempt_at)
            SELECT r.nid, r.alert, r.episode, r.kind, r.channel, r.recipient, r.payload,
                :now, :now
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(nid text, alert bigint,
                episode integer, kind text, channel text, recipient text, payload jsonb)
            ON CONFLICT (notification_id, channel, recipient) DO NOTHING
            """
        ),
        {"rows": _json(rows), "now": now},
    )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": ALERT_OUTBOX_CHANNEL})
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
    # Every event up to `head` is committed and visible (seq order is commit order), so
    # when the batch is not full the cursor may jump past the non-KPI events up to it.
    head = await last_seq(session)
    events = await read_since(session, cursor, limit=batch, types=["kpi"])
    if not events:
        return max(cursor, head)
    out.events = len(events)
    latest = _latest_per_key(events)
    kpis = sorted({k[0] for k in latest})
    items: list[Item] = []
    for rule, unit in await _rule_units(session, "r.kpi = ANY(:kpis)", {"kpis": kpis}):
        event = latest.get((rule.kpi, unit, rule.window))
        if event is not None:
            kpi = event.payload.get("kpi") or {}
            items.append((rule, unit, Observation.from_kpi(kpi, event.payload.get("as_of"))))
    await apply_observations(session, items, now, out)
    newest = max(e.seq for e in events)
    return newest if len(events) >= batch else max(newest, head)


async def _latest_logged(session: AsyncSession, rule: Rule, unit: str) -> Observation | None:
    event = await latest(session, type="kpi", unit=unit, subject=rule.kpi, window=rule.window)
    if event is None:
        return None
    return Observation.from_kpi(event.payload.get("kpi") or {}, event.payload.get("as_of"))


async def _engine_value(session: AsyncSession, rule: Rule, unit: str) -> Observation:
    try:
        # A savepoint: an engine query failing must not abort the whole evaluation round.
        async with session.begin_nested():
            kpi = await current_value(session, rule.kpi, unit, rule.window)
    except Exception as exc:  # the engine failing is "cannot evaluate", a state of its own
        log.warning("KPI %s for %s could not be evaluated: %s", rule.kpi, unit, exc)
        return Observation(value=None, error=f"error: {type(exc).__name__}")
    return Observation.from_kpi(kpi)


async def _sources_back(session: AsyncSession, now: datetime, out: Round) -> None:
    """Alerts held in the error state by a source outage, and those whose source just went
    down, re-decided on their last known figures (no new KPI event may come for a while)."""
    failing = await failing_feeds(session)
    rows = await session.execute(
        text(
            f"""
            SELECT {RULE_SELECT}, a.unit_code AS target_unit, a.value, a.numerator,
                   a.denominator, a.target, a.as_of, a.no_data_reason
            FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
            WHERE r.deleted_at IS NULL AND a.state <> 'closed'
              AND (a.no_data_reason LIKE 'error: source %' OR r.kpi = ANY(:kpis))
            """
        ),
        {"kpis": [k for k, kpi in CATALOGUE.items() if kpi.feed in failing]},
    )
    items: list[Item] = []
    for row in rows:
        rule = rule_from_row(row)
        down = failing.get(CATALOGUE[rule.kpi].feed) if rule.kpi in CATALOGUE else None
        was_down = (row.no_data_reason or "").startswith("error: source ")
        if bool(down) == was_down:
            continue
        figures = Observation(row.value, row.numerator, row.denominator, row.target, row.as_of)
        items.append((rule, row.target_unit, figures))
    await apply_observations(session, items, now, out)


RULE_SELECT = ", ".join("r." + c.strip() for c in RULE_COLUMNS.split(","))


async def tick(session: AsyncSession, now: datetime, out: Round, *, recompute: bool) -> None:
    """What time alone changes: pending alerts reaching `for_seconds`, alerts whose rule
    was edited since their last evaluation (re-decided on their last reading), time-based
    KPIs (overdue counts), alerts never evaluated yet, and reminders."""
    pending = await session.execute(
        text(
            f"""
            SELECT {RULE_SELECT}, a.unit_code AS target_unit, a.value, a.numerator,
                   a.denominator, a.target, a.as_of, a.no_data_reason
            FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
            WHERE r.deleted_at IS NULL AND a.state <> 'closed'
              AND (a.state = 'pending' OR r.updated_at > a.observed_at)
            """
        )
    )
    await apply_observations(
        session,
        [
            (
                rule_from_row(row),
                row.target_unit,
                Observation(
                    row.value,
                    row.numerator,
                    row.denominator,
                    row.target,
                    row.as_of,
                    error=row.no_data_reason
                    if (row.no_data_reason or "").startswith("error")
                    else None,
                ),
            )
            for row in pending
        ],
        now,
        out,
    )
    unseen = await _rule_units(
        session,
        "NOT EXISTS (SELECT 1 FROM alerts a WHERE a.rule_id = r.id "
        "AND a.unit_code = t.target_unit)",
    )
    # A new rule starts from the last KPI event already in the log, else asks the engine
    # (one query per new (rule, unit): this happens once in an alert's life).
    first: list[Item] = []
    for rule, unit in unseen:
        obs = await _latest_logged(session, rule, unit) or await _engine_value(session, rule, unit)
        first.append((rule, unit, obs))
    await apply_observations(session, first, now, out)
    if recompute:
        timed = [kid for kid in known_kpis() if is_time_based(kid)]
        await apply_observations(
            session,
            [
                (rule, unit, await _engine_value(session, rule, unit))
                for rule, unit in await _rule_units(
                    session, "r.kpi = ANY(:timed)", {"timed": timed}
                )
            ],
            now,
            out,
        )
    await _sources_back(session, now, out)
    await remind(session, now, out)


async def remind(session: AsyncSession, now: datetime, out: Round) -> None:
    """Reminders every `repeat_seconds` for alerts firing, not acknowledged, not silenced."""
    due = (
        await session.execute(
            text(
                f"""
                WITH due AS (
                    SELECT a.id FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
                    WHERE a.state = 'firing' AND r.deleted_at IS NULL AND r.repeat_seconds > 0
                      AND a.last_notified_at + make_interval(secs => r.repeat_seconds) <= :now
                      AND NOT {SILENCED_SQL}
                    FOR UPDATE OF a
                )
                UPDATE alerts SET reminders = alerts.reminders + 1, last_notified_at = :now
                FROM due WHERE alerts.id = due.id
                RETURNING alerts.id, alerts.episode, alerts.reminders, alerts.rule_id
                """
            ),
            {"now": now},
        )
    ).all()
    if not due:
        return
    rules = {
        r.id: rule_from_row(r)
        for r in await session.execute(
            text(f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ANY(:ids)"),
            {"ids": sorted({d.rule_id for d in due})},
        )
    }
    alerts = {
        a["id"]: a
        for a in await alert_dicts(
            session, "a.id = ANY(:ids)", {"ids": [d.id for d in due]}, limit=len(due)
        )
    }
    out.notifications += await enqueue(
        session,
        [(rules[d.rule_id], alerts[d.id], "reminder", d.episode, d.reminders) for d in due],
        now=now,
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


async def outbox_health(session: AsyncSession) -> dict[str, Any]:
    """How far behind the evaluator and the sender are (for /readyz)."""
    row = (
        await session.execute(
            text(
                """
                SELECT (SELECT seq FROM alert_cursor WHERE id = 1) AS evaluated_seq,
                       count(*) FILTER (WHERE status = 'pending') AS pending,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       extract(epoch FROM now() - min(created_at)
                           FILTER (WHERE status = 'pending')) AS oldest_pending_seconds
                FROM alert_notifications
                """
            )
        )
    ).one()
    oldest = row.oldest_pending_seconds
    return {
        "events_behind": await last_seq(session) - int(row.evaluated_seq),
        "outbox_pending": int(row.pending),
        "outbox_failed": int(row.failed),
        "oldest_pending_seconds": None if oldest is None else round(float(oldest), 1),
    }
