"""Scorecards per unit and period: the current period's computed live, a closed period's
stored once (and recomputed only explicitly), the children ranked by total. Scoring is
`scoring.py`; entered values `entered.py`; the choices are in docs/scorecards.md."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import Invalid
from ioc.kpis import Raw, period_values, snapshot
from ioc.localtime import local_date
from ioc.scorecards.definition import DECISION_766
from ioc.scorecards.entered import entered_values, insert_value
from ioc.scorecards.models import (
    IndicatorValueIn,
    IndicatorValueOut,
    RankedChild,
    RecomputeOut,
    Scorecard,
)
from ioc.scorecards.periods import Period, period_of
from ioc.scorecards.scoring import Entered, score_unit
from ioc.scorecards.tables import scorecards_closed
from ioc.units import Unit, children, get_unit

SCORECARD = DECISION_766.id


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
    """Record an entered value; a closed period's stored scorecards it falls in are
    recomputed (the entry is an explicit change, named as the reason)."""
    entered, period = await insert_value(session, body, by=by, source=source)
    await _recompute_closed(session, body.unit, period, by=f"{by} entered {body.indicator}")
    return entered


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
