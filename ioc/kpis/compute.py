"""KPI values recomputed from the aggregates (never the raw tables), for many units and
windows in a few set-based reads: counters, overdue counts, online services and the response
times behind the medians. `rebuild`, the tests and the snapshots that `kpi_current` cannot
answer use it; the engine computes the same values from its memory.

Terms are read here; values come from them by `values.kpi_values`, medians by
`median.median`, the same code as the engine's.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.catalogue import (
    CATALOGUE,
    local_moment,
    status_of,
    window_days,
    window_periods,
)
from ioc.kpis.contributions import COUNT_COLUMNS, OPEN_FEEDS
from ioc.kpis.current import CURRENT_LOCK, Rows, current_of, publish_changes, write_current
from ioc.kpis.median import median
from ioc.kpis.targets import config_of, targets_of
from ioc.kpis.values import OVERDUE_TERMS, TERMS, Change, Floats, Judged, Raw, raws
from ioc.localtime import WINDOWS, local_date
from ioc.units import closure_pairs

Key = tuple[str, str]  # (unit, window)


def _span(periods: list[dict[str, str]], today: date) -> dict[str, date]:
    """The first month and day asked for (every window ends today): a key range per grain,
    so only those counter rows are read."""

    def first(grain: str) -> date:
        return min(
            (date.fromisoformat(p["period"]) for p in periods if p["grain"] == grain),
            default=today,
        )

    return {"first_m": first("m"), "first_d": first("d"), "today": today}


async def window_counts(
    session: AsyncSession, units: list[str], windows: Iterable[str], today: date
) -> dict[Key, dict[str, int]]:
    """The counters of each (unit, window) that has any (whole months plus days)."""
    periods = [
        {"w": w, "grain": g, "period": p.isoformat()}
        for w in windows
        for g, p in window_periods(w, today)
    ]
    sums = ", ".join(f"sum(k.{c})::bigint AS {c}" for c in COUNT_COLUMNS)
    rows = await session.execute(
        text(
            f"""
            SELECT k.unit_code, p.w, {sums}
            FROM jsonb_to_recordset(CAST(:periods AS jsonb)) AS p(w text, grain "char",
                period date)
            JOIN kpi_counts k ON k.unit_code = ANY(:units) AND k.grain = p.grain
                AND k.period = p.period
            WHERE (k.grain = 'm' AND k.period BETWEEN :first_m AND :today
                   OR k.grain = 'd' AND k.period BETWEEN :first_d AND :today)
            GROUP BY k.unit_code, p.w
            """
        ),
        {"periods": json.dumps(periods), "units": units, **_span(periods, today)},
    )
    return {(r[0], r[1]): dict(zip(COUNT_COLUMNS, r[2:], strict=True)) for r in rows}


async def overdue_counts(
    session: AsyncSession, units: list[str], now: datetime
) -> dict[tuple[str, str], int]:
    """(unit, feed) -> open records past due at `now` (one key range per unit and feed)."""
    rows = await session.execute(
        text(
            """
            SELECT u.code, f.feed,
                   (SELECT sum(o.n)::bigint FROM kpi_open o
                    WHERE o.unit_code = u.code AND o.feed = f.feed AND o.due_at < :now)
            FROM unnest(CAST(:units AS text[])) AS u(code)
            CROSS JOIN unnest(CAST(:feeds AS text[])) AS f(feed)
            """
        ),
        {"units": units, "now": now, "feeds": list(OPEN_FEEDS)},
    )
    return {(r[0], r[1]): int(r[2]) for r in rows if r[2] is not None}


async def service_counts(
    session: AsyncSession, units: list[str], windows: Iterable[str], today: date
) -> dict[Key, tuple[int, int]]:
    """(unit, window) -> (online services used in the window, offered now)."""
    bounds = [
        {"w": w, "lo": window_days(w, today)[0].isoformat(), "hi": today.isoformat()}
        for w in windows
    ]
    rows = await session.execute(
        text(
            """
            SELECT s.unit_code, b.w,
                   coalesce(sum(s.n) FILTER (WHERE s.last_day BETWEEN b.lo AND b.hi), 0)::bigint,
                   sum(s.n)::bigint
            FROM jsonb_to_recordset(CAST(:bounds AS jsonb)) AS b(w text, lo date, hi date)
            JOIN kpi_service_usage s ON s.unit_code = ANY(:units)
            GROUP BY 1, 2
            """
        ),
        {"bounds": json.dumps(bounds), "units": units},
    )
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


async def response_times(
    session: AsyncSession, first: date, last: date, units: list[str] | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per filing unit (of `units`, default all): the reception days (ordinals) and response
    times (seconds) of its reports received from `first` to `last` with a response, sorted
    by time. One array per unit converted by numpy (a province's year is ~350k times: 1.5 s
    through row objects, ~0.2 s this way); the event loop gets a turn after every unit."""
    only = "AND unit_code = ANY(:units)" if units is not None else ""
    rows = await session.execute(
        text(
            f"""
            SELECT unit_code, array_agg(recv_day - CAST(:first AS date)), array_agg(resp_seconds)
            FROM kpi_report_proj
            WHERE resp_seconds IS NOT NULL AND recv_day BETWEEN :first AND :last {only}
            GROUP BY unit_code
            """
        ),
        {"first": first, "last": last, **({"units": units} if units is not None else {})},
    )
    out = []
    for unit, offsets, seconds in rows:
        # (the aggregates of one group see its rows in one order)
        received = np.array(offsets, dtype=np.int32) + np.int32(first.toordinal())
        times = np.array(seconds, dtype=np.float64)
        by_time = np.argsort(times, kind="stable")
        out.append((str(unit), received[by_time], times[by_time]))
        await asyncio.sleep(0)
    return out


async def medians(
    session: AsyncSession, units: list[str], windows: list[str], today: date
) -> dict[Key, tuple[float, int]]:
    """(unit, window) -> (median response seconds, how many) over the unit's subtree."""
    firsts = [window_days(w, today)[0] for w in windows]
    closure = await closure_pairs(session, units)
    filing = sorted({d for _, d in closure})
    lists: list[dict[str, list[float]]] = [{} for _ in windows]
    for unit, received, times in await response_times(session, min(firsts), today, filing):
        for w, first in enumerate(firsts):
            inside = times[received >= first.toordinal()]
            if len(inside):
                lists[w][unit] = inside.tolist()
    below: dict[str, list[str]] = defaultdict(list)
    for ancestor, descendant in closure:
        below[ancestor].append(descendant)
    return {
        (u, w): median([lists[i][f] for f in below[u] if f in lists[i]])
        for u in units
        for i, w in enumerate(windows)
    }


def _needs(kpis: Iterable[str]) -> set[str]:
    return {t for k in kpis for t in CATALOGUE[k].terms}


async def compute(
    session: AsyncSession,
    units: list[str],
    windows: list[str],
    now: datetime,
    today: date,
    *,
    kpis: Iterable[str] | None = None,
) -> dict[Key, dict[str, Raw]]:
    """Raw values of `kpis` (default all) for every (unit, window): units with no data get
    zero counts and null rates. `today` is the local day of `now`. Only the terms the wanted
    KPIs are made of are read."""
    wanted = list(kpis) if kpis is not None else list(CATALOGUE)
    needs = _needs(wanted)
    keys = [(u, w) for u in units for w in windows]
    counts = (
        await window_counts(session, units, windows, today) if needs & set(COUNT_COLUMNS) else {}
    )
    overdue = await overdue_counts(session, units, now) if needs & set(OVERDUE_TERMS) else {}
    services = (
        await service_counts(session, units, windows, today)
        if needs & {"services_used", "services_offered"}
        else {}
    )
    middle = await medians(session, units, windows, today) if "responses" in needs else {}
    columns: dict[str, list[float]] = {t: [] for t in TERMS}
    for unit, window in keys:
        counted = counts.get((unit, window), {})
        for c in COUNT_COLUMNS:
            columns[c].append(counted.get(c, 0))
        for feed, term in zip(OPEN_FEEDS, OVERDUE_TERMS, strict=True):
            columns[term].append(overdue.get((unit, feed), 0))
        used, offered = services.get((unit, window), (0, 0))
        columns["services_used"].append(used)
        columns["services_offered"].append(offered)
        seconds, n = middle.get((unit, window), (0.0, 0))
        columns["response_median_seconds"].append(seconds)
        columns["responses"].append(n)
    terms: dict[str, Floats] = {t: np.array(v, dtype=np.float64) for t, v in columns.items()}
    values = raws(terms, keys)
    return {key: {k: values[key][k] for k in CATALOGUE if k in wanted} for key in keys}


async def judged(
    session: AsyncSession,
    units: list[str],
    windows: list[str],
    moment: datetime,
    kpis: list[str] | None = None,
) -> Rows:
    """Recompute from the aggregates and judge with the targets in force: every (unit,
    window)'s values, catalogue order."""
    raw = await compute(session, units, windows, moment, local_date(moment), kpis=kpis)
    config = await config_of(session)
    targets = await targets_of(session, units, config)
    out: Rows = {}
    for (unit, window), values in raw.items():
        row = []
        for kpi_id, r in values.items():
            target = targets[(unit, kpi_id)][0]
            status = status_of(CATALOGUE[kpi_id], r.value, target, config.margin)
            row.append(Judged(kpi_id, r.value, r.numerator, r.denominator, target, status))
        out[(unit, window)] = row
    return out


async def refresh(
    session: AsyncSession,
    units: list[str],
    now: datetime,
    *,
    windows: list[str] | None = None,
    emit: bool = True,
) -> int:
    """Recompute every value of `units` × `windows`, store the rows holding changed ones in
    `kpi_current` and publish one `kpi` event per changed value (in the caller's
    transaction); return how many.

    (A rebuild and the tests recompute this way, from the aggregates; the engine computes
    from its memory and stores with `current.store_changes`.)"""
    if not units:
        return 0
    windows = windows or list(WINDOWS)
    moment = local_moment(now)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CURRENT_LOCK})
    fresh = await judged(session, units, windows, moment)
    stored = await current_of(session, units)
    changed = [
        Change(u, w, j)
        for (u, w), values in fresh.items()
        for j in values
        if stored.get((u, w, j.id)) != j
    ]
    rewritten = {(c.unit, c.window) for c in changed}
    await write_current(session, {key: fresh[key] for key in rewritten}, moment)
    if emit:
        await publish_changes(session, changed, moment)
    return len(changed)
