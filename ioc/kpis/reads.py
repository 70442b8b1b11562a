"""Reading KPI values for screens, alerts and the API: `snapshot`, `kpi_value`,
`values_for`. Each takes a session (the caller owns the transaction).

Values come from what the engine stored in `kpi_current` when they are exact at the moment
asked (`served`), else they are recomputed from the aggregates (`compute.judged`) — never
from the raw records.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import Invalid
from ioc.kpis.catalogue import CATALOGUE, local_moment, status_of
from ioc.kpis.compute import judged
from ioc.kpis.contributions import OPEN_FEEDS
from ioc.kpis.current import Rows, parse_row
from ioc.kpis.models import KpiChild, KpiSnapshot, KpiValue
from ioc.kpis.targets import check_kpi
from ioc.kpis.values import OVERDUE_TERMS, Judged
from ioc.localtime import WINDOWS, local_date
from ioc.units import children as unit_children
from ioc.units import get_unit

# How long a reader of the aggregates waits for the engine's fold (see `folded`).
_FOLD_WAIT_SECONDS = 2.0
# overdue KPI id -> its feed (its count moves with the clock alone)
_OVERDUE_FEED = {
    kpi.id: feed
    for kpi in CATALOGUE.values()
    for feed, term in zip(OPEN_FEEDS, OVERDUE_TERMS, strict=True)
    if kpi.kind == "overdue" and kpi.terms == (term,)
}
# 766 rate id -> the feed of its open records past their deadline (their number moves with the
# clock alone: each one that passes leaves the numerator)
_LATE_FEED = {
    kpi.id: feed
    for kpi in CATALOGUE.values()
    for feed, term in zip(OPEN_FEEDS, OVERDUE_TERMS, strict=True)
    if kpi.kind == "open_rate" and kpi.terms[3] == term
}
# the open sets whose entries may pass between a stored value and a read
_PASSING = [f for f in OPEN_FEEDS if f in {*_OVERDUE_FEED.values(), *_LATE_FEED.values()}]


def check_window(window: str) -> None:
    if window not in WINDOWS:
        raise Invalid(f"unknown window {window!r}; one of {', '.join(WINDOWS)}")


async def folded(session: AsyncSession) -> None:
    """Wait (up to `_FOLD_WAIT_SECONDS`) until no engine round waits to be folded into the
    aggregates. The engine commits a round's events before its fold (docs/kpis.md), so a
    client that has just seen an event and asks for a series would otherwise read the
    aggregates of one round before; the fold takes ~150 ms at full scale. Under READ
    COMMITTED each poll sees the latest commits, and the reads that follow see the fold."""
    waited = 0.0
    while waited < _FOLD_WAIT_SECONDS:
        pending = (
            await session.execute(text("SELECT EXISTS (SELECT 1 FROM kpi_journal)"))
        ).scalar_one()
        if not pending:
            return
        await asyncio.sleep(0.01)
        waited += 0.01


async def served(
    session: AsyncSession,
    units: list[str],
    windows: list[str],
    moment: datetime,
    kpis: list[str] | None,
) -> Rows:
    """The values the engine stored in `kpi_current`, for the (unit, window) pairs it can
    answer exactly at `moment`: those with a row for every wanted KPI, when the engine's last
    round was on the same local day and not after `moment`.

    Each round leaves `kpi_current` equal to what the aggregates give at the round's moment
    (same transaction), and only the engine moves the aggregates; the one thing that moves
    with the clock alone within a day is an overdue count, which is `kpi_open` summed below
    `now`: the stored count plus the open records whose due moment passed since the value was
    stored (`greatest(as_of, last_run_at)`: a target change stores values computed later than
    the round) — and a 766 rate's open part, whose numerator loses those of its open records
    whose deadline passed. One statement, so it reads one consistent state."""
    wanted = list(kpis) if kpis is not None else list(CATALOGUE)
    passed = ",\n".join(
        f"""(SELECT sum(o.n)::bigint FROM kpi_open o
             WHERE o.unit_code = k.unit_code AND o.feed = '{feed}'
               AND o.due_at >= greatest(k.as_of, s.last_run_at) AND o.due_at < :now)"""
        for feed in _PASSING
    )
    rows = await session.execute(
        text(
            f"""
            SELECT k.unit_code, k.time_window, k.kpis, s.warn_margin, {passed}
            FROM kpi_state s
            JOIN kpi_current k ON k.unit_code = ANY(:u) AND k.time_window = ANY(:w)
            WHERE s.last_local_day = :today AND s.last_run_at <= :now
              AND k.as_of <= :now
            """
        ),
        {"u": units, "w": windows, "today": local_date(moment), "now": moment},
    )
    out: Rows = {}
    for unit, window, kpis_json, margin, *due in rows:
        stored = parse_row(kpis_json)
        if any(k not in stored for k in wanted):
            continue
        values = []
        for kpi_id in wanted:
            j = stored[kpi_id]
            feed = _OVERDUE_FEED.get(kpi_id)
            extra = due[_PASSING.index(feed)] if feed is not None else None
            if extra:  # more overdue now than when stored: judge the new count
                value = float(j.value or 0) + float(extra)
                status = status_of(CATALOGUE[kpi_id], value, j.target, float(margin))
                j = Judged(kpi_id, value, value, j.denominator, j.target, status)
            late = _LATE_FEED.get(kpi_id)
            fewer = due[_PASSING.index(late)] if late is not None else None
            if fewer:  # open records past their 766 deadline since stored: late now
                num = float(j.numerator or 0) - float(fewer)
                rate = num / j.denominator if j.denominator else None
                status = status_of(CATALOGUE[kpi_id], rate, j.target, float(margin))
                j = Judged(kpi_id, rate, num, j.denominator, j.target, status)
            values.append(j)
        out[(unit, window)] = values
    return out


def _model(j: Judged) -> KpiValue:
    return KpiValue(
        id=j.id,
        value=j.value,
        numerator=j.numerator,
        denominator=j.denominator,
        target=j.target,
        status=j.status,
    )


async def values_for(
    session: AsyncSession,
    units: list[str],
    windows: list[str],
    now: datetime,
    *,
    kpis: list[str] | None = None,
) -> dict[tuple[str, str], list[KpiValue]]:
    """Judged values (with targets and statuses) for every (unit, window), catalogue order.

    Read from `kpi_current` (one indexed read) where the engine's stored values are exact
    at `now` (see `served`); the rest (a `now` before the last round or on another local
    day, units or windows not computed yet) is recomputed from the aggregates."""
    moment = local_moment(now)
    found = await served(session, units, windows, moment, kpis)
    missing = [(u, w) for u in units for w in windows if (u, w) not in found]
    if missing:
        await folded(session)
        again = await judged(
            session,
            sorted({u for u, _ in missing}),
            sorted({w for _, w in missing}),
            moment,
            kpis,
        )
        found.update({key: again[key] for key in missing})
    return {(u, w): [_model(j) for j in found[(u, w)]] for u in units for w in windows}


async def snapshot(
    session: AsyncSession,
    unit_code: str,
    window: str,
    *,
    children: bool = False,
    now: datetime | None = None,
) -> KpiSnapshot:
    """Every KPI of the catalogue for a unit (its whole subtree) and window, and optionally
    for each direct child."""
    check_window(window)
    moment = local_moment(now)
    await get_unit(session, unit_code)
    kids = await unit_children(session, unit_code) if children else []
    codes = [unit_code, *[k.code for k in kids]]
    values = await values_for(session, codes, [window], moment)
    return KpiSnapshot(
        unit=unit_code,
        window=window,
        as_of=moment,
        kpis=values[(unit_code, window)],
        children=[KpiChild(unit=k.code, name=k.name, kpis=values[(k.code, window)]) for k in kids],
    )


async def kpi_value(
    session: AsyncSession,
    kpi_id: str,
    unit_code: str,
    window: str,
    *,
    now: datetime | None = None,
) -> KpiValue:
    """One KPI for one unit and window, as the snapshot would show it now."""
    check_kpi(kpi_id)
    check_window(window)
    await get_unit(session, unit_code)
    values = await values_for(session, [unit_code], [window], local_moment(now), kpis=[kpi_id])
    return values[(unit_code, window)][0]
