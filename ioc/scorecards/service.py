"""Scorecards: each indicator's value (computed, entered or missing), its score, the groups'
subtotals, the total, and the children ranked; closed periods stored once.

Scoring (CONTRACT §4.1, docs/scorecards.md): full points at or above the threshold, else
`value × points / threshold`. Choices the decision leaves open are written in the docs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import Invalid, NotFound
from ioc.kpis import Raw, period_values, snapshot
from ioc.localtime import local_date
from ioc.scorecards.definition import DECISION_766, Definition, Indicator, entered_ids
from ioc.scorecards.models import (
    EnteredOut,
    GroupScore,
    IndicatorScore,
    IndicatorValueIn,
    IndicatorValueOut,
    RankedChild,
    RecomputeOut,
    Scorecard,
    Source,
)
from ioc.scorecards.periods import Period, period_of
from ioc.scorecards.tables import indicator_values, scorecards_closed
from ioc.units import Unit, children, get_unit

SCORECARD = DECISION_766.id


@dataclass(frozen=True)
class Entered:
    value: float
    period: str
    by: str
    at: datetime
    note: str | None
    source: str


def score_of(value: float | None, points: float, threshold: float) -> float | None:
    """Full points at or above the threshold, else value × points / threshold."""
    if value is None:
        return None
    return points if value >= threshold else value * points / threshold


def score_unit(
    definition: Definition,
    unit: Unit,
    computed: dict[str, Raw],
    entered: dict[str, Entered],
) -> tuple[float, float, list[GroupScore]]:
    """(total, max, groups) of one unit from its computed KPI values and entered values."""
    indicators = definition.indicators
    below_province = unit.level != "province"

    def has_value(ind: Indicator) -> bool:
        if ind.id in entered:
            return True
        return (
            ind.kpi is not None and computed.get(ind.kpi, Raw(None, None, None)).value is not None
        )

    # A computed indicator with nothing to judge gives its points to others where the
    # METRICS table says so (5.3 without reports: to 5.2 and 5.4), else they leave `max`.
    points = {i.id: i.points for i in indicators.values()}
    for ind in indicators.values():
        if ind.share_when_no_data and ind.kpi is not None and not has_value(ind):
            for other in ind.share_when_no_data:
                points[other] += ind.points / len(ind.share_when_no_data)
            points[ind.id] = 0.0
    groups: list[GroupScore] = []
    for group in definition.groups:
        scored: list[IndicatorScore] = []
        for ind in group.indicators:
            raw = computed.get(ind.kpi, Raw(None, None, None)) if ind.kpi else Raw(None, None, None)
            given = entered.get(ind.id)
            value, numerator, denominator = raw.value, raw.numerator, raw.denominator
            source: Source
            if given is not None:
                value, numerator, denominator, source = given.value, None, None, "entered"
            elif ind.kpi is not None:
                source = "computed"
            else:
                source = "missing"
            if below_province and ind.scope == "province":
                score: float | None = points[ind.id]  # METRICS: commune not applicable → max
                source = "not_applicable"
            elif source == "missing":
                score = 0.0  # awaited: counts against the unit until entered
            else:
                score = score_of(value, points[ind.id], ind.threshold)
            scored.append(
                IndicatorScore(
                    id=ind.id,
                    name=ind.name,
                    name_en=ind.name_en,
                    kpi=ind.kpi,
                    value=value,
                    numerator=numerator,
                    denominator=denominator,
                    points=points[ind.id],
                    threshold=ind.threshold,
                    score=score,
                    source=source,
                    entered=(
                        EnteredOut(
                            period=given.period,
                            by=given.by,
                            at=given.at,
                            note=given.note,
                            source=given.source,
                        )
                        if given is not None
                        else None
                    ),
                )
            )
        groups.append(
            GroupScore(
                id=group.id,
                name=group.name,
                name_en=group.name_en,
                score=sum(s.score or 0.0 for s in scored),
                max=sum(s.points for s in scored if s.score is not None),
                indicators=scored,
            )
        )
    return sum(g.score for g in groups), sum(g.max for g in groups), groups


async def entered_values(
    session: AsyncSession, units: Iterable[str], period: Period
) -> dict[str, dict[str, Entered]]:
    """The newest entered value per unit and indicator for `period`, else for the quarter or
    year that holds it (a yearly figure applies to its months)."""
    names = [period.name, *period.enclosing()]
    newest = (
        select(
            indicator_values,
            func.row_number()
            .over(
                partition_by=(
                    indicator_values.c.unit_code,
                    indicator_values.c.indicator,
                    indicator_values.c.period,
                ),
                order_by=indicator_values.c.id.desc(),
            )
            .label("n"),
        )
        .where(indicator_values.c.unit_code.in_(list(units)))
        .where(indicator_values.c.period.in_(names))
        .subquery()
    )
    rows = (await session.execute(select(newest).where(newest.c.n == 1))).mappings().all()
    found: dict[str, dict[str, Entered]] = {}
    rank = {name: i for i, name in enumerate(names)}
    for row in sorted(rows, key=lambda r: rank[r["period"]], reverse=True):
        found.setdefault(row["unit_code"], {})[row["indicator"]] = Entered(
            row["value"], row["period"], row["entered_by"], row["entered_at"], row["note"],
            row["source"],
        )  # fmt: skip
    return found


async def _computed_now(
    session: AsyncSession, unit: str, kind: str, now: datetime
) -> dict[str, dict[str, Raw]]:
    """The current window's KPI values of a unit and its children (as screens see them)."""
    snap = await snapshot(session, unit, kind, children=True, now=now)
    out = {unit: {k.id: Raw(k.value, k.numerator, k.denominator) for k in snap.kpis}}
    for child in snap.children:
        out[child.unit] = {k.id: Raw(k.value, k.numerator, k.denominator) for k in child.kpis}
    return out


def _card(
    unit: Unit,
    period: Period,
    computed: dict[str, Raw],
    entered: dict[str, Entered],
    *,
    closed: bool,
    now: datetime,
) -> Scorecard:
    total, maximum, groups = score_unit(DECISION_766, unit, computed, entered)
    return Scorecard(
        unit=unit.code,
        name=unit.name,
        period=period.name,
        kind=period.kind,
        from_=period.start,
        to=period.end,
        closed=closed,
        computed_at=now,
        total=total,
        max=maximum,
        groups=groups,
    )


def _ranked(cards: list[Scorecard]) -> list[RankedChild]:
    ordered = sorted(cards, key=lambda c: (-c.total, c.name, c.unit))
    return [
        RankedChild(rank=i + 1, unit=c.unit, name=c.name, total=c.total, max=c.max)
        for i, c in enumerate(ordered)
    ]


async def _stored(
    session: AsyncSession, units: list[str], period: Period
) -> dict[str, tuple[int, Scorecard]]:
    newest = (
        select(
            scorecards_closed.c.unit_code,
            scorecards_closed.c.version,
            scorecards_closed.c.body,
            func.row_number()
            .over(
                partition_by=scorecards_closed.c.unit_code,
                order_by=scorecards_closed.c.version.desc(),
            )
            .label("n"),
        )
        .where(scorecards_closed.c.scorecard == SCORECARD)
        .where(scorecards_closed.c.period == period.name)
        .where(scorecards_closed.c.unit_code.in_(units))
        .subquery()
    )
    rows = (await session.execute(select(newest).where(newest.c.n == 1))).all()
    return {r.unit_code: (r.version, Scorecard.model_validate(r.body)) for r in rows}


async def _store(session: AsyncSession, card: Scorecard, version: int, reason: str) -> Scorecard:
    card = card.model_copy(update={"version": version})
    # Two first reads of a closed period may race: the first stored one stands.
    await session.execute(
        pg_insert(scorecards_closed)
        .values(
            scorecard=SCORECARD,
            unit_code=card.unit,
            period=card.period,
            version=version,
            total=card.total,
            body=card.model_dump(mode="json", by_alias=True, exclude={"children"}),
            reason=reason,
        )
        .on_conflict_do_nothing(constraint="uq_scorecards_closed")
    )
    return card


async def _closed_cards(
    session: AsyncSession, units: list[Unit], period: Period, now: datetime
) -> dict[str, Scorecard]:
    """The stored scorecards of a closed period; those not stored yet are computed from the
    aggregates and stored now (version 1), so they never move again by themselves."""
    codes = [u.code for u in units]
    stored = await _stored(session, codes, period)
    missing = [u for u in units if u.code not in stored]
    cards = {code: card for code, (_, card) in stored.items()}
    if missing:
        computed = await period_values(session, [u.code for u in missing], period.start, period.end)
        entered = await entered_values(session, [u.code for u in missing], period)
        for unit in missing:
            card = _card(
                unit, period, computed[unit.code], entered.get(unit.code, {}), closed=True, now=now
            )
            cards[unit.code] = await _store(session, card, 1, "closed")
    return cards


async def read_scorecard(
    session: AsyncSession, unit_code: str, period_text: str, *, now: datetime | None = None
) -> Scorecard:
    """A unit's 766 scorecard for a period (CONTRACT §4.1), its children ranked by total.

    A closed period's scorecard is stored the first time it is asked for (or by the month's
    close) and read back unchanged afterwards; the current period's is computed live."""
    moment = now or datetime.now(UTC)
    period = period_of(period_text, moment)
    today = local_date(moment)
    if period.start > today:
        raise Invalid(f"period {period.name} has not begun")
    unit = await get_unit(session, unit_code)
    kids = await children(session, unit_code)
    if period.is_closed(today):
        cards = await _closed_cards(session, [unit, *kids], period, moment)
        card = cards[unit.code]
        card.children = _ranked([cards[k.code] for k in kids])
        return card
    computed = await _computed_now(session, unit_code, period.kind, moment)
    entered = await entered_values(session, [unit.code, *(k.code for k in kids)], period)
    card = _card(unit, period, computed[unit.code], entered.get(unit.code, {}), closed=False,
                 now=moment)  # fmt: skip
    card.children = _ranked(
        [
            _card(
                k,
                period,
                computed.get(k.code, {}),
                entered.get(k.code, {}),
                closed=False,
                now=moment,
            )
            for k in kids
        ]
    )
    return card


async def close_period(session: AsyncSession, units: list[Unit], period: Period) -> int:
    """Store the scorecards of a period just over for `units` (those not stored yet)."""
    before = await _stored(session, [u.code for u in units], period)
    await _closed_cards(session, units, period, datetime.now(UTC))
    return len(units) - len(before)


async def recompute(
    session: AsyncSession, unit_code: str, period_text: str, by: str
) -> RecomputeOut:
    """Compute a closed period again from today's records and store it as a new version;
    say what changed (the explicit way a closed score moves)."""
    moment = datetime.now(UTC)
    period = period_of(period_text, moment)
    if not period.is_closed(local_date(moment)):
        raise Invalid(f"period {period.name} is not over: its scorecard is live, not stored")
    unit = await get_unit(session, unit_code)
    stored = (await _stored(session, [unit.code], period)).get(unit.code)
    computed = await period_values(session, [unit.code], period.start, period.end)
    entered = await entered_values(session, [unit.code], period)
    fresh = _card(unit, period, computed[unit.code], entered.get(unit.code, {}), closed=True,
                  now=moment)  # fmt: skip
    version = stored[0] + 1 if stored else 1
    await _store(session, fresh, version, f"recomputed by {by}")
    return RecomputeOut(
        unit=unit.code,
        period=period.name,
        previous_total=stored[1].total if stored else None,
        total=fresh.total,
        version=version,
        changed=_differences(stored[1] if stored else None, fresh),
    )


def _differences(old: Scorecard | None, new: Scorecard) -> list[dict[str, Any]]:
    before = {i.id: i for g in (old.groups if old else []) for i in g.indicators}
    changed: list[dict[str, Any]] = []
    for group in new.groups:
        for ind in group.indicators:
            was = before.get(ind.id)
            if was is None or (was.value, was.score, was.source) != (
                ind.value,
                ind.score,
                ind.source,
            ):
                changed.append(
                    {
                        "indicator": ind.id,
                        "value": [was.value if was else None, ind.value],
                        "score": [was.score if was else None, ind.score],
                        "source": [was.source if was else None, ind.source],
                    }
                )
    return changed


async def enter_value(
    session: AsyncSession, body: IndicatorValueIn, *, by: str, source: str
) -> IndicatorValueOut:
    """Record an entered value (history: nothing is overwritten; the newest counts)."""
    kinds = entered_ids()
    if body.indicator not in kinds:
        raise NotFound(
            f"no indicator {body.indicator!r} takes entered values; GET /api/v1/indicators "
            "lists them"
        )
    period = period_of(body.period)
    scored = DECISION_766.indicators.get(body.indicator)
    other = next((o for o in DECISION_766.others if o.id == body.indicator), None)
    limit = (
        1.0
        if scored is not None or (other and other.scale == "fraction")
        else (other.max if other else 1.0)
    )
    if body.value > limit:
        raise Invalid(
            f"{body.indicator} is "
            + ("a fraction (0–1: 0.85 for 85 %)" if limit == 1.0 else f"at most {limit:g}")
            + f"; got {body.value:g}"
        )
    if other is not None and other.period == "year" and period.kind != "year":
        raise Invalid(f"{body.indicator} is given per year: period must be like 2026")
    await get_unit(session, body.unit)
    row = (
        (
            await session.execute(
                insert(indicator_values)
                .values(
                    indicator=body.indicator,
                    unit_code=body.unit,
                    period=period.name,
                    value=body.value,
                    note=body.note,
                    source=source,
                    entered_by=by,
                )
                .returning(indicator_values)
            )
        )
        .mappings()
        .one()
    )
    await _recompute_closed(session, body.unit, period, by=f"{by} entered {body.indicator}")
    return _value_out(row)


async def _recompute_closed(session: AsyncSession, unit: str, entered: Period, by: str) -> None:
    """A value entered for a closed period is an explicit change: the stored scorecards of
    the unit within that period are recomputed (a new version saying what changed)."""
    rows = await session.execute(
        select(scorecards_closed.c.period)
        .distinct()
        .where(scorecards_closed.c.scorecard == SCORECARD)
        .where(scorecards_closed.c.unit_code == unit)
    )
    for (name,) in rows.all():
        stored = period_of(name)
        if entered.start <= stored.start and stored.end <= entered.end:
            await recompute(session, unit, name, by=by)


def _value_out(row: Any) -> IndicatorValueOut:
    return IndicatorValueOut(
        id=row["id"],
        indicator=row["indicator"],
        unit=row["unit_code"],
        period=row["period"],
        value=row["value"],
        note=row["note"],
        source=row["source"],
        entered_by=row["entered_by"],
        entered_at=row["entered_at"],
    )


async def value_history(
    session: AsyncSession,
    units: list[str],
    *,
    indicator: str | None = None,
    limit: int = 500,
) -> list[IndicatorValueOut]:
    """Entered values of `units`, newest first (the history: superseded ones included)."""
    query = select(indicator_values).where(indicator_values.c.unit_code.in_(units))
    if indicator is not None:
        query = query.where(indicator_values.c.indicator == indicator)
    rows = await session.execute(query.order_by(indicator_values.c.id.desc()).limit(limit))
    return [_value_out(r) for r in rows.mappings()]
