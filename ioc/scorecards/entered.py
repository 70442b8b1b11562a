"""Values entered for indicators ioc cannot compute: validated, kept as history (nothing is
overwritten; the newest per indicator, unit and period counts), read for a period."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import Invalid, NotFound
from ioc.scorecards.definition import DECISION_766, entered_ids
from ioc.scorecards.models import IndicatorValueIn, IndicatorValueOut
from ioc.scorecards.periods import Period, period_of
from ioc.scorecards.scoring import Entered
from ioc.scorecards.tables import indicator_values
from ioc.units import get_unit


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


async def insert_value(
    session: AsyncSession, body: IndicatorValueIn, *, by: str, source: str
) -> tuple[IndicatorValueOut, Period]:
    """Validate and record an entered value; returns it and its period."""
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
    return _value_out(row), period


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
