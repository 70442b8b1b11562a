"""KPI values from the aggregates (never the raw tables, except the report projection that
holds one response time per report for the exact median), for many units and windows in a
few set-based queries. Snapshots, `kpi_value` and the engine's change detection all use it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.aggregates import COUNT_COLUMNS
from ioc.kpis.catalogue import CATALOGUE, window_days, window_periods

Key = tuple[str, str]  # (unit, window)


@dataclass(frozen=True, slots=True)
class Raw:
    """A KPI before targets: value with its numerator and denominator."""

    value: float | None
    numerator: float | None
    denominator: float | None


def _rate(num: int, den: int) -> Raw:
    return Raw(num / den if den else None, float(num), float(den))


def _count(n: int) -> Raw:
    return Raw(float(n), float(n), None)


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


# The feeds with open records (overdue counts), in the order the values name them.
FEEDS = ("dossiers", "reports", "documents")


async def _overdue(
    session: AsyncSession, units: list[str], now: datetime
) -> dict[tuple[str, str], int]:
    # One primary-key range per (unit, feed): only that unit's overdue entries are read.
    rows = await session.execute(
        text(
            """
            SELECT u.code, f.feed,
                   (SELECT sum(o.n)::bigint FROM kpi_open o
                    WHERE o.unit_code = u.code AND o.feed = f.feed AND o.due_at < :now)
            FROM unnest(CAST(:units AS text[])) AS u(code)
            CROSS JOIN (VALUES ('dossiers'), ('reports'), ('documents')) AS f(feed)
            """
        ),
        {"units": units, "now": now},
    )
    return {(r[0], r[1]): int(r[2]) for r in rows if r[2] is not None}


def _bounds(windows: Iterable[str], today: date) -> str:
    return json.dumps(
        [
            {"w": w, "lo": window_days(w, today)[0].isoformat(), "hi": today.isoformat()}
            for w in windows
        ]
    )


async def _services(
    session: AsyncSession, units: list[str], windows: Iterable[str], today: date
) -> dict[Key, tuple[int, int]]:
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
        {"bounds": _bounds(windows, today), "units": units},
    )
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


def _ranges(window: str, today: date) -> dict[str, date]:
    """A window as one range of day rows and one of month rows (`window_periods` are
    contiguous: days of the current month, or the 7 days; whole months before it). An
    empty month range is lo > hi."""
    periods = window_periods(window, today)
    days = [p for g, p in periods if g == "d"]
    months = [p for g, p in periods if g == "m"]
    return {
        "d_lo": min(days, default=today + timedelta(days=1)),
        "d_hi": max(days, default=today),
        "m_lo": min(months, default=today + timedelta(days=1)),
        "m_hi": max(months, default=today),
    }


async def _medians(
    session: AsyncSession,
    units: list[str],
    windows: Iterable[str],
    today: date,
) -> dict[Key, tuple[float, int]]:
    """Exact medians: count through the rolled-up 1-hour histogram to the bucket(s) holding
    the middle rank(s), then sort only that bucket's reports of the unit's subtree in the
    window. The result is `percentile_cont(0.5)`'s, to the last bit: for an even count the
    two middle values a <= b give a + (b - a) * 0.5, as PostgreSQL computes it.

    The histogram is read once for all windows: one row per (unit, bucket) with a count per
    window (FILTER), running sums per unit in one sort, then one row per window."""
    windows = list(windows)
    params: dict[str, object] = {"units": units, "today": today}
    sums, running, per_window = [], [], []
    ranges = [_ranges(w, today) for w in windows]
    for i, (w, r) in enumerate(zip(windows, ranges, strict=True)):
        lo, hi = window_days(w, today)
        params.update({f"w{i}": w, f"lo{i}": lo, f"hi{i}": hi})
        params.update({f"{k}{i}": v for k, v in r.items()})
        sums.append(
            f"coalesce(sum(n) FILTER (WHERE grain = 'd' AND period BETWEEN :d_lo{i} AND :d_hi{i}"
            f" OR grain = 'm' AND period BETWEEN :m_lo{i} AND :m_hi{i}), 0)::bigint AS n{i}"
        )
        running.append(f"n{i}, sum(n{i}) OVER wb AS cum{i}, sum(n{i}) OVER wu AS total{i}")
        per_window.append(
            f"(CAST(:w{i} AS text), n{i}, cum{i}::bigint, total{i}::bigint, "
            f"CAST(:lo{i} AS date), CAST(:hi{i} AS date))"
        )
    params["first_m"] = min((r["m_lo"] for r in ranges), default=today)
    params["first_d"] = min((r["d_lo"] for r in ranges), default=today)
    histogram = f"""
                SELECT unit_code COLLATE "C" AS unit_code, bucket, {", ".join(sums)}
                FROM kpi_resp_hist
                WHERE unit_code = ANY(:units)
                  AND (grain = 'm' AND period BETWEEN :first_m AND :today
                       OR grain = 'd' AND period BETWEEN :first_d AND :today)
                GROUP BY 1, 2
    """
    rows = await session.execute(
        text(
            f"""
            WITH h AS (
                -- "C": the grouping and the running sums sort by plain bytes
                {histogram}
            ), c AS (
                SELECT unit_code, bucket, {", ".join(running)}
                FROM h
                WINDOW wb AS (PARTITION BY unit_code ORDER BY bucket),
                       wu AS (PARTITION BY unit_code)
            ), picks AS (
                -- the bucket(s) holding the middle rank(s) (k1 = k2 for an odd total)
                SELECT DISTINCT c.unit_code, x.w, x.total, c.bucket,
                       r.k - (x.cum - x.n) AS pos, x.lo, x.hi
                FROM c
                CROSS JOIN LATERAL (VALUES {", ".join(per_window)})
                    AS x(w, n, cum, total, lo, hi)
                CROSS JOIN LATERAL (VALUES ((x.total + 1) / 2), (x.total / 2 + 1)) AS r(k)
                WHERE x.n > 0 AND r.k > x.cum - x.n AND r.k <= x.cum
            )
            SELECT p.unit_code, p.w, p.total,
                   min(v.resp) + (max(v.resp) - min(v.resp)) * 0.5
            FROM picks p
            CROSS JOIN LATERAL (
                SELECT x.resp_seconds AS resp
                FROM unit_closure cl
                JOIN kpi_report_proj x ON x.unit_code = cl.descendant_code
                    AND x.resp_bucket = p.bucket AND x.recv_day BETWEEN p.lo AND p.hi
                    AND x.resp_seconds IS NOT NULL
                WHERE cl.ancestor_code = p.unit_code
                ORDER BY x.resp_seconds
                OFFSET p.pos - 1 LIMIT 1
            ) v
            GROUP BY 1, 2, 3
            """
        ),
        params,
    )
    return {(r[0], r[1]): (float(r[3]), int(r[2])) for r in rows}


def raw_values(
    counts: dict[str, int],
    overdue: dict[str, int],
    services: tuple[int, int],
    median: tuple[float, int],
) -> dict[str, Raw]:
    """Every KPI of the catalogue from what it is made of: the window's counters, the overdue
    counts per feed, (services used, offered), (median seconds, reports)."""
    c = counts
    seconds, n = median
    return {
        "dossier_received": _count(c["d_received"]),
        "dossier_online_rate": _rate(c["d_online"], c["d_received"]),
        "dossier_ontime_rate": _rate(c["d_ontime"], c["d_finished"]),
        "dossier_overdue_open": _count(overdue["dossiers"]),
        "dossier_digitized_rate": _rate(c["d_digitized"], c["d_received"]),
        "dossier_online_payment_rate": _rate(c["d_paid"], c["d_online"]),
        "online_service_usage_rate": _rate(*services),
        "report_received": _count(c["r_received"]),
        "report_ontime_rate": _rate(c["r_ontime"], c["r_resolved"]),
        "report_overdue_open": _count(overdue["reports"]),
        "report_response_p50_hours": Raw(seconds / 3600.0 if n else None, None, float(n)),
        "document_electronic_rate": _rate(c["doc_electronic"], c["doc_sent"]),
        "document_overdue_open": _count(overdue["documents"]),
    }


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
    zero counts and null rates. `today` is the local day of `now`."""
    wanted = set(kpis) if kpis is not None else set(CATALOGUE)
    families = {CATALOGUE[k].kind for k in wanted}
    need_counts = bool(wanted - {"online_service_usage_rate"}) and bool(
        families & {"count", "rate"}
    )
    counts = await window_counts(session, units, windows, today) if need_counts else {}
    overdue = await _overdue(session, units, now) if "overdue" in families else {}
    services = (
        await _services(session, units, windows, today)
        if "online_service_usage_rate" in wanted
        else {}
    )
    medians = await _medians(session, units, windows, today) if "median" in families else {}
    zero = dict.fromkeys(COUNT_COLUMNS, 0)
    out: dict[Key, dict[str, Raw]] = defaultdict(dict)
    for unit in units:
        for w in windows:
            values = raw_values(
                counts.get((unit, w), zero),
                {f: overdue.get((unit, f), 0) for f in FEEDS},
                services.get((unit, w), (0, 0)),
                medians.get((unit, w), (0.0, 0)),
            )
            out[(unit, w)] = {k: values[k] for k in CATALOGUE if k in wanted}
    return out
