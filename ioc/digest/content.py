"""What a unit's weekly digest says: the 766 score and its change, the KPIs against target
over the week with 30 days of history, the children furthest off target, the alerts that
fired or resolved in the week, and what is overdue now. Counts and rates only: no citizen,
no record id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import kpis
from ioc.kpis import CATALOGUE, KpiValue, snapshot
from ioc.localtime import LOCAL_TZ, local_date
from ioc.scorecards import read_scorecard
from ioc.units import get_unit, subtree_sql

# The rates a department head is judged on, in this order (those with a target).
DIGEST_KPIS = (
    "i766_2_1",
    "dossier_online_rate",
    "dossier_ontime_rate",
    "dossier_digitized_rate",
    "report_ontime_rate",
    "document_electronic_rate",
    "agency_report_online_rate",
    "agency_report_ontime_rate",
)
OVERDUE_KPIS = ("dossier_overdue_open", "report_overdue_open", "agency_report_overdue_open")
HISTORY_DAYS = 30
WORST_CHILDREN = 5


@dataclass
class KpiLine:
    id: str
    name: str
    value: float | None
    target: float | None
    status: str
    history: list[tuple[date, float | None]] = field(default_factory=list)


@dataclass
class ChildLine:
    unit: str
    name: str
    bad: int
    ontime: float | None


@dataclass
class AlertLine:
    rule: str
    unit: str
    severity: str
    state: str  # firing | resolved
    at: datetime


@dataclass
class Digest:
    unit: str
    unit_name: str
    week_start: date
    week_end: date
    score: float | None
    score_max: float | None
    score_before: float | None
    kpis: list[KpiLine]
    worst: list[ChildLine]
    alerts: list[AlertLine]
    overdue: dict[str, float]


def last_week(now: datetime) -> date:
    """The Monday of the week (Monday–Sunday) before the one `now` is in."""
    today = local_date(now)
    return today - timedelta(days=today.weekday() + 7)


async def build_digest(
    session: AsyncSession, unit: str, week_start: date, *, score_before: float | None = None
) -> Digest:
    """The digest of `unit` for the week starting `week_start`, as of the end of that week
    (the 7-day window ending on its Sunday)."""
    week_end = week_start + timedelta(days=6)
    moment = datetime.combine(week_end, time(23, 59, 59), LOCAL_TZ)
    found = await get_unit(session, unit)
    week = await snapshot(session, unit, "7d", children=True, now=moment)
    by_id = {k.id: k for k in week.kpis}
    lines = []
    for kpi_id in DIGEST_KPIS:
        value: KpiValue | None = by_id.get(kpi_id)
        if value is None:
            continue
        history = await kpis.series(
            session, kpi_id, unit, week_end - timedelta(days=HISTORY_DAYS - 1), week_end
        )
        lines.append(
            KpiLine(
                kpi_id,
                CATALOGUE[kpi_id].name_vi,
                value.value,
                value.target,
                value.status,
                [(p.period, p.value) for p in history.points],
            )
        )
    worst = sorted(
        (
            ChildLine(
                c.unit,
                c.name,
                sum(1 for k in c.kpis if k.status == "bad"),
                next((k.value for k in c.kpis if k.id == "i766_2_1"), None),
            )
            for c in week.children
        ),
        key=lambda c: (-c.bad, c.ontime if c.ontime is not None else 2.0, c.name),
    )[:WORST_CHILDREN]
    now_values = await snapshot(session, unit, "today")
    overdue = {k.id: float(k.value or 0) for k in now_values.kpis if k.id in OVERDUE_KPIS}
    card = await read_scorecard(session, unit, "month", now=min(moment, datetime.now(LOCAL_TZ)))
    return Digest(
        unit=unit,
        unit_name=found.name,
        week_start=week_start,
        week_end=week_end,
        score=card.total,
        score_max=card.max,
        score_before=score_before,
        kpis=lines,
        worst=[c for c in worst if c.bad or c.ontime is not None],
        alerts=await _alerts(session, unit, week_start, week_end),
        overdue=overdue,
    )


async def _alerts(
    session: AsyncSession, unit: str, week_start: date, week_end: date
) -> list[AlertLine]:
    start = datetime.combine(week_start, time(), LOCAL_TZ)
    end = datetime.combine(week_end + timedelta(days=1), time(), LOCAL_TZ)
    rows = await session.execute(
        text(
            f"""
            SELECT r.name, u.name AS unit_name, r.severity, t.to_state, t.at
            FROM alert_transitions t
            JOIN alerts a ON a.id = t.alert_id
            JOIN alert_rules r ON r.id = a.rule_id
            JOIN units u ON u.code = a.unit_code
            WHERE t.to_state IN ('firing', 'resolved') AND t.at >= :start AND t.at < :end
              AND a.unit_code IN {subtree_sql(":unit")}
            ORDER BY t.at
            """
        ),
        {"unit": unit, "start": start, "end": end},
    )
    return [AlertLine(r.name, r.unit_name, r.severity, r.to_state, r.at) for r in rows]
