"""A KPI over each local day (or calendar month) alone: `series`, from the day and month
rows of the aggregates; every KPI over a closed period (`period_values`, for scorecards).
The same terms and the same formula (`values.kpi_values`) as the
windows' values, per period instead of per window.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import Invalid
from ioc.kpis.catalogue import CATALOGUE
from ioc.kpis.compute import response_times
from ioc.kpis.contributions import COUNT_COLUMNS
from ioc.kpis.median import median
from ioc.kpis.models import KpiSeries, SeriesPoint
from ioc.kpis.reads import folded
from ioc.kpis.targets import check_kpi, config_of, targets_of
from ioc.kpis.values import TERMS, Floats, Raw, raws
from ioc.localtime import FIRST_YEAR, LAST_YEAR
from ioc.units import get_unit, subtree, subtree_sql

MAX_STEPS = 1000


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _periods(start: date, end: date, step: str) -> list[date]:
    """The first day of every step from `start` to `end` (months: from `start`'s month).

    Every bound is checked before any period is built: a request for years 0001–9999 costs
    nothing (it once built 3.6 million dates and stalled the event loop for seconds)."""
    if step not in ("day", "month"):
        raise Invalid("step must be day or month")
    if end < start:
        raise Invalid("`to` is before `from`")
    for day in (start, end):
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise Invalid(f"{day.isoformat()} is outside the years {FIRST_YEAR}–{LAST_YEAR}")
    if step == "day":
        steps = (end - start).days + 1
    else:
        steps = (end.year - start.year) * 12 + end.month - start.month + 1
    if steps > MAX_STEPS:
        raise Invalid(
            f"{steps} steps asked, at most {MAX_STEPS} per series; narrow from/to or use step=month"
        )
    if step == "day":
        return [start + timedelta(days=i) for i in range(steps)]
    periods = [start.replace(day=1)]
    while len(periods) < steps:
        periods.append(_next_month(periods[-1]))
    return periods


async def series(
    session: AsyncSession,
    kpi_id: str,
    unit_code: str,
    start: date,
    end: date,
    *,
    step: str = "day",
) -> KpiSeries:
    """The KPI over each local day (or calendar month) from `start` to `end`, inclusive."""
    check_kpi(kpi_id)
    if not CATALOGUE[kpi_id].windowed:
        raise Invalid(
            f"{kpi_id} is a figure of now (what is overdue, the catalogue); it has no "
            "history to chart (its changes are in the kpi events)"
        )
    periods = _periods(start, end, step)
    await get_unit(session, unit_code)
    await folded(session)
    terms = await _terms(session, kpi_id, unit_code, periods, step)
    found = raws(terms, periods)
    points = [
        SeriesPoint(period=p, value=r.value, numerator=r.numerator, denominator=r.denominator)
        for p in periods
        for r in [found[p][kpi_id]]
    ]
    config = await config_of(session)
    target = (await targets_of(session, [unit_code], config))[(unit_code, kpi_id)][0]
    return KpiSeries(id=kpi_id, unit=unit_code, step=step, target=target, points=points)


async def _terms(
    session: AsyncSession, kpi_id: str, unit: str, periods: list[date], step: str
) -> dict[str, Floats]:
    """The terms of `kpi_id` per period (arrays in `periods` order; others zero)."""
    end = periods[-1] if step == "day" else _next_month(periods[-1]) - timedelta(days=1)
    at = {p: i for i, p in enumerate(periods)}
    terms = {t: np.zeros(len(periods)) for t in TERMS}
    needs = set(CATALOGUE[kpi_id].terms)
    if needs & set(COUNT_COLUMNS):
        grain = "d" if step == "day" else "m"
        rows = await session.execute(
            text(
                f"SELECT period, {', '.join(COUNT_COLUMNS)} FROM kpi_counts "
                f"WHERE unit_code = :u AND grain = '{grain}' AND period BETWEEN :a AND :b"
            ),
            {"u": unit, "a": periods[0], "b": end},
        )
        for period, *counts in rows:
            for c, n in zip(COUNT_COLUMNS, counts, strict=True):
                terms[c][at[period]] = n
    if "responses" in needs:
        await _median_terms(session, unit, periods, end, step, terms)
    if "services_used" in needs:
        await _service_terms(session, unit, periods, end, step, terms)
    return terms


async def _median_terms(
    session: AsyncSession,
    unit: str,
    periods: list[date],
    end: date,
    step: str,
    terms: dict[str, Floats],
) -> None:
    """Each period's median of the response times received in it, over the unit's subtree."""
    filing = await subtree(session, unit)
    lists: dict[int, list[list[float]]] = {}
    for _, received, times in await response_times(session, periods[0], end, filing):
        days, inverse = np.unique(received, return_inverse=True)
        if step == "month":
            days = np.array([date.fromordinal(d).replace(day=1).toordinal() for d in days.tolist()])
        keys = days[inverse]
        by_key = np.argsort(keys, kind="stable")  # stable: each period's times stay sorted
        keys, times = keys[by_key], times[by_key]
        firsts, starts = np.unique(keys, return_index=True)
        for key, part in zip(firsts.tolist(), np.split(times, starts[1:]), strict=True):
            lists.setdefault(key, []).append(part.tolist())
    at = {p.toordinal(): i for i, p in enumerate(periods)}
    for key, sorted_lists in lists.items():
        seconds, n = median(sorted_lists)
        terms["response_median_seconds"][at[key]] = seconds
        terms["responses"][at[key]] = n


async def _service_terms(
    session: AsyncSession,
    unit: str,
    periods: list[date],
    end: date,
    step: str,
    terms: dict[str, Floats],
) -> None:
    """Online services used in each period / offered now (the catalogue has no history)."""
    offered = (
        await session.execute(
            text("SELECT coalesce(sum(n), 0)::bigint FROM kpi_service_usage WHERE unit_code = :u"),
            {"u": unit},
        )
    ).scalar_one()
    bucket = {"day": "d.day", "month": "date_trunc('month', d.day)::date"}.get(
        step,
        "CAST(:a AS date)",  # "period": the whole range is one bucket
    )
    rows = await session.execute(
        text(
            f"""
            SELECT {bucket}, count(DISTINCT (s.unit_code, s.procedure_code))
            FROM kpi_service s
            JOIN kpi_service_day d ON d.unit_code = s.unit_code
                AND d.procedure_code = s.procedure_code AND d.day BETWEEN :a AND :b
            WHERE s.offered AND s.unit_code IN {subtree_sql(":u")}
            GROUP BY 1
            """
        ),
        {"u": unit, "a": periods[0], "b": end},
    )
    terms["services_offered"][:] = int(offered)
    at = {p: i for i, p in enumerate(periods)}
    for period, n in rows:
        terms["services_used"][at[period]] = int(n)


async def period_values(
    session: AsyncSession, unit_codes: list[str], start: date, end: date
) -> dict[str, dict[str, Raw]]:
    """Every KPI of each unit (its subtree) over the whole months from `start` to `end` as one
    period, as a closed period sees it: the records counted in it, nothing open now (the open
    part of 2.1/5.2/5.4 is a figure of now, not of the past — as in `series`). KPIs that are
    figures of now (`windowed` false) are None."""
    await folded(session)
    codes = sorted(set(unit_codes))
    at = {u: i for i, u in enumerate(codes)}
    terms = {t: np.zeros(len(codes)) for t in TERMS}
    rows = await session.execute(
        text(
            f"SELECT unit_code, {', '.join(f'sum({c})' for c in COUNT_COLUMNS)} FROM kpi_counts "
            "WHERE unit_code = ANY(:units) AND grain = 'm' AND period BETWEEN :a AND :b "
            "GROUP BY unit_code"
        ),
        {"units": codes, "a": start.replace(day=1), "b": end},
    )
    for unit, *counts in rows:
        for c, n in zip(COUNT_COLUMNS, counts, strict=True):
            terms[c][at[unit]] = n
    for unit in codes:  # distinct services over the whole period, not a sum of months
        used = np.zeros(1)
        offered = np.zeros(1)
        await _service_terms(
            session,
            unit,
            [start],
            end,
            "period",
            {"services_used": used, "services_offered": offered},
        )
        terms["services_used"][at[unit]] = used[0]
        terms["services_offered"][at[unit]] = offered[0]
    found = raws(terms, codes)
    nothing = Raw(None, None, None)
    return {
        unit: {k: (raw if CATALOGUE[k].windowed else nothing) for k, raw in found[unit].items()}
        for unit in codes
    }


# KPIs made of counters alone: their monthly values come straight from the month rows.
COUNTER_KPIS: tuple[str, ...] = tuple(
    k.id for k in CATALOGUE.values() if k.windowed and all(t in COUNT_COLUMNS for t in k.terms)
)


async def monthly_values(
    session: AsyncSession, unit_codes: list[str], first: date, last: date
) -> list[tuple[str, date, dict[str, Raw]]]:
    """(unit, month, {kpi: Raw}) for every unit and month from `first` to `last` that has
    any counted record, for the `COUNTER_KPIS` — one query over the month rows."""
    months = _periods(first, last, "month")
    await folded(session)
    rows = (
        await session.execute(
            text(
                f"SELECT unit_code, period, {', '.join(COUNT_COLUMNS)} FROM kpi_counts "
                "WHERE unit_code = ANY(:units) AND grain = 'm' AND period BETWEEN :a AND :b "
                "ORDER BY unit_code, period"
            ),
            {"units": sorted(set(unit_codes)), "a": months[0], "b": months[-1]},
        )
    ).all()
    if not rows:
        return []
    terms = {t: np.zeros(len(rows)) for t in TERMS}
    for i, (_, _, *counts) in enumerate(rows):
        for c, n in zip(COUNT_COLUMNS, counts, strict=True):
            terms[c][i] = n
    found = raws(terms, list(range(len(rows))))
    return [
        (unit, period, {k: found[i][k] for k in COUNTER_KPIS})
        for i, (unit, period, *_) in enumerate(rows)
    ]
