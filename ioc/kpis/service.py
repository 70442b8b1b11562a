"""KPI service functions (each takes a session; the caller owns the transaction).

- `snapshot`, `kpi_value`, `series`: read the aggregates for screens, alerts and the API.
- `refresh`: recompute (unit, window) values, compare with `kpi_current`, and publish one
  `kpi` event per changed (unit, window, kpi) in the caller's transaction.
- `run_round`: one engine round (fold new records in, roll-overs, overdue transitions).
- `rebuild`: recompute every aggregate from the raw records.
- targets: per-unit overrides, inherited by the subtree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import Invalid, NotFound
from ioc.events import NewEvent, publish
from ioc.kpis.catalogue import CATALOGUE, status_of
from ioc.kpis.compute import Raw, compute
from ioc.kpis.models import (
    KpiChild,
    KpiSeries,
    KpiSnapshot,
    KpiValue,
    SeriesPoint,
    TargetOut,
)
from ioc.localtime import LOCAL_TZ, WINDOWS, local_date
from ioc.loops import lease_key
from ioc.units import children as unit_children
from ioc.units import get_unit

# Serialises writers of kpi_current (the engine, target changes, rebuild).
CURRENT_LOCK = lease_key("kpis.current")
BATCH_RECORDS = 50_000


def _now(now: datetime | None) -> datetime:
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise Invalid("`now` must be timezone-aware")
    return moment.astimezone(LOCAL_TZ)


# How long a reader of the aggregates waits for the engine's fold (see `_folded`).
_FOLD_WAIT_SECONDS = 2.0


async def _folded(session: AsyncSession) -> None:
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


def _check(kpi_id: str | None, window: str | None) -> None:
    if kpi_id is not None and kpi_id not in CATALOGUE:
        raise NotFound(f"unknown KPI {kpi_id!r}; known: {', '.join(CATALOGUE)}")
    if window is not None and window not in WINDOWS:
        raise Invalid(f"unknown window {window!r}; one of {', '.join(WINDOWS)}")


@dataclass(frozen=True, slots=True)
class Config:
    targets: dict[str, float]
    margin: float


async def config_of(session: AsyncSession) -> Config:
    row = (await session.execute(text("SELECT config_targets, warn_margin FROM kpi_state"))).first()
    if row is None:
        return Config({}, 0.05)
    return Config({k: float(v) for k, v in dict(row[0]).items()}, float(row[1]))


Targets = dict[tuple[str, str], tuple[float | None, str]]


async def targets_of(session: AsyncSession, units: list[str], config: Config) -> Targets:
    """(unit, kpi) → (target, where it comes from): the nearest unit override up the tree,
    else the configured default, else the catalogue's."""
    out: dict[tuple[str, str], tuple[float | None, str]] = {}
    for unit in units:
        for kpi in CATALOGUE.values():
            if kpi.id in config.targets:
                out[(unit, kpi.id)] = (config.targets[kpi.id], "config")
            else:
                out[(unit, kpi.id)] = (kpi.target, "catalogue")
    rows = await session.execute(
        text(
            """
            SELECT DISTINCT ON (c.descendant_code, t.kpi_id)
                   c.descendant_code, t.kpi_id, t.target, t.unit_code
            FROM unit_closure c JOIN kpi_targets t ON t.unit_code = c.ancestor_code
            WHERE c.descendant_code = ANY(:units)
            ORDER BY c.descendant_code, t.kpi_id, c.depth
            """
        ),
        {"units": units},
    )
    for unit, kpi_id, target, source in rows:
        if kpi_id in CATALOGUE:
            where = "unit" if source == unit else f"inherited:{source}"
            out[(unit, kpi_id)] = (float(target), where)
    return out


# (id, value, numerator, denominator, target, status): the engine judges thousands of values
# per round, so it works on plain tuples; the API gets `KpiValue` models.
Judged = tuple[str, float | None, float | None, float | None, float | None, str]


def _judge(
    raws: dict[str, Raw],
    unit: str,
    targets: dict[tuple[str, str], tuple[float | None, str]],
    margin: float,
) -> list[Judged]:
    values: list[Judged] = []
    for kpi_id, raw in raws.items():
        target = targets[(unit, kpi_id)][0]
        status = status_of(CATALOGUE[kpi_id], raw.value, target, margin)
        values.append((kpi_id, raw.value, raw.numerator, raw.denominator, target, status))
    return values


def _model(j: Judged) -> KpiValue:
    return KpiValue(id=j[0], value=j[1], numerator=j[2], denominator=j[3], target=j[4], status=j[5])


async def _judged(
    session: AsyncSession,
    units: list[str],
    windows: list[str],
    moment: datetime,
    kpis: list[str] | None,
) -> dict[tuple[str, str], list[Judged]]:
    """Recompute from the aggregates (what the engine does; readers when `_served` cannot
    answer)."""
    today = local_date(moment)
    wanted = list(kpis) if kpis is not None else list(CATALOGUE)
    raws = await compute(session, units, windows, moment, today, kpis=wanted)
    config = await config_of(session)
    targets = await targets_of(session, units, config)
    return {key: _judge(r, key[0], targets, config.margin) for key, r in raws.items()}


_OVERDUE_FEED = {
    "dossier_overdue_open": "dossiers",
    "report_overdue_open": "reports",
    "document_overdue_open": "documents",
}


async def _served(
    session: AsyncSession,
    units: list[str],
    windows: list[str],
    moment: datetime,
    kpis: list[str] | None,
) -> dict[tuple[str, str], list[Judged]]:
    """The values the engine stored in `kpi_current`, for the (unit, window) pairs it can
    answer exactly at `moment`: those with a row for every wanted KPI, when the engine's last
    round was on the same local day and not after `moment`.

    Each round leaves `kpi_current` equal to what the aggregates give at the round's moment
    (same transaction), and only the engine moves the aggregates; the one thing that moves
    with the clock alone within a day is an overdue count, which is `kpi_open` summed below
    `now`: the stored count plus the open records whose due moment passed since the value was
    stored (`greatest(as_of, last_run_at)`: a target change stores values computed later than
    the round). One statement, so it reads one consistent state."""
    wanted = list(kpis) if kpis is not None else list(CATALOGUE)
    passed = ",\n".join(
        f"""(SELECT sum(o.n)::bigint FROM kpi_open o
             WHERE o.unit_code = k.unit_code AND o.feed = '{feed}'
               AND o.due_at >= greatest(k.as_of, s.last_run_at) AND o.due_at < :now)"""
        for feed in _OVERDUE_FEED.values()
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
    feeds = list(_OVERDUE_FEED.values())
    out: dict[tuple[str, str], list[Judged]] = {}
    for unit, window, kpis_json, margin, *due in rows:
        stored = _parse_row(kpis_json)
        if any(k not in stored for k in wanted):
            continue
        values = []
        for kpi_id in wanted:
            j = stored[kpi_id]
            feed = _OVERDUE_FEED.get(kpi_id)
            extra = due[feeds.index(feed)] if feed is not None else None
            if extra:  # more overdue now than when stored: judge the new count
                value = float(j[1] or 0) + float(extra)
                status = status_of(CATALOGUE[kpi_id], value, j[4], float(margin))
                j = (kpi_id, value, value, j[3], j[4], status)
            values.append(j)
        out[(unit, window)] = values
    return out


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
    at `now` (see `_served`); the rest (a `now` before the last round or on another local
    day, units or windows not computed yet) is recomputed from the aggregates."""
    moment = _now(now)
    judged = await _served(session, units, windows, moment, kpis)
    missing = [(u, w) for u in units for w in windows if (u, w) not in judged]
    if missing:
        await _folded(session)
        again = await _judged(
            session,
            sorted({u for u, _ in missing}),
            sorted({w for _, w in missing}),
            moment,
            kpis,
        )
        judged.update({key: again[key] for key in missing})
    return {(u, w): [_model(j) for j in judged[(u, w)]] for u in units for w in windows}


async def snapshot(
    session: AsyncSession,
    unit_code: str,
    window: str,
    *,
    children: bool = False,
    now: datetime | None = None,
) -> KpiSnapshot:
    """Every KPI of the catalogue for a unit (its whole subtree) and window, and optionally
    for each direct child, read from the aggregates (CONTRACT §4)."""
    _check(None, window)
    moment = _now(now)
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
    _check(kpi_id, window)
    await get_unit(session, unit_code)
    values = await values_for(session, [unit_code], [window], _now(now), kpis=[kpi_id])
    return values[(unit_code, window)][0]


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
    _check(kpi_id, None)
    kpi = CATALOGUE[kpi_id]
    if not kpi.windowed:
        raise Invalid(
            f"{kpi_id} is a count of what is overdue now; it has no history to chart "
            "(its changes are in the kpi events)"
        )
    if step not in ("day", "month"):
        raise Invalid("step must be day or month")
    if end < start:
        raise Invalid("`to` is before `from`")
    if step == "month":
        start = start.replace(day=1)
    periods: list[date] = []
    cursor = start
    while cursor <= end:
        periods.append(cursor)
        if step == "day":
            cursor += timedelta(days=1)
        else:
            cursor = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
    if len(periods) > 1000:
        raise Invalid("at most 1000 steps per series; narrow from/to or use step=month")
    await get_unit(session, unit_code)
    await _folded(session)
    points = await _series_points(session, kpi_id, unit_code, periods, step)
    config = await config_of(session)
    target = (await targets_of(session, [unit_code], config))[(unit_code, kpi_id)][0]
    return KpiSeries(id=kpi_id, unit=unit_code, step=step, target=target, points=points)


_SERIES_COLUMNS: dict[str, tuple[str, str]] = {
    "dossier_received": ("d_received", ""),
    "dossier_online_rate": ("d_online", "d_received"),
    "dossier_ontime_rate": ("d_ontime", "d_finished"),
    "dossier_digitized_rate": ("d_digitized", "d_received"),
    "dossier_online_payment_rate": ("d_paid", "d_online"),
    "report_received": ("r_received", ""),
    "report_ontime_rate": ("r_ontime", "r_resolved"),
    "document_electronic_rate": ("doc_electronic", "doc_sent"),
}


async def _series_points(
    session: AsyncSession, kpi_id: str, unit: str, periods: list[date], step: str
) -> list[SeriesPoint]:
    last = periods[-1]
    end = (
        last
        if step == "day"
        else (last.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    )
    found: dict[date, Raw] = {}
    if kpi_id in _SERIES_COLUMNS:
        num, den = _SERIES_COLUMNS[kpi_id]
        grain = "d" if step == "day" else "m"
        rows = await session.execute(
            text(
                f"SELECT period, {num}, {den or 'NULL'} FROM kpi_counts "
                f"WHERE unit_code = :u AND grain = '{grain}' AND period BETWEEN :a AND :b"
            ),
            {"u": unit, "a": periods[0], "b": end},
        )
        for period, n, d in rows:
            found[period] = Raw(float(n), float(n), None) if d is None else _raw_rate(n, d)
    elif kpi_id == "report_response_p50_hours":
        bucket = "r.recv_day" if step == "day" else "date_trunc('month', r.recv_day)::date"
        rows = await session.execute(
            text(
                f"""
                SELECT {bucket}, percentile_cont(0.5) WITHIN GROUP (ORDER BY r.resp_seconds),
                       count(*)
                FROM unit_closure c JOIN kpi_report_proj r ON r.unit_code = c.descendant_code
                WHERE c.ancestor_code = :u AND r.recv_day BETWEEN :a AND :b
                  AND r.resp_seconds IS NOT NULL
                GROUP BY 1
                """
            ),
            {"u": unit, "a": periods[0], "b": end},
        )
        for period, seconds, n in rows:
            found[period] = Raw(float(seconds) / 3600.0, None, float(n))
    else:  # online_service_usage_rate: services used in each period / services offered now
        bucket = "d.day" if step == "day" else "date_trunc('month', d.day)::date"
        offered = (
            await session.execute(
                text(
                    "SELECT coalesce(sum(n), 0)::bigint FROM kpi_service_usage WHERE unit_code = :u"
                ),
                {"u": unit},
            )
        ).scalar_one()
        rows = await session.execute(
            text(
                f"""
                SELECT {bucket}, count(DISTINCT (s.unit_code, s.procedure_code))
                FROM unit_closure c
                JOIN kpi_service s ON s.unit_code = c.descendant_code AND s.offered
                JOIN kpi_service_day d ON d.unit_code = s.unit_code
                    AND d.procedure_code = s.procedure_code AND d.day BETWEEN :a AND :b
                WHERE c.ancestor_code = :u
                GROUP BY 1
                """
            ),
            {"u": unit, "a": periods[0], "b": end},
        )
        used = {period: int(n) for period, n in rows}
        for p in periods:
            found[p] = _raw_rate(used.get(p, 0), int(offered))
    default = (
        Raw(0.0, 0.0, None)
        if CATALOGUE[kpi_id].kind == "count"
        else Raw(None, 0.0 if kpi_id != "report_response_p50_hours" else None, 0.0)
    )
    return [
        SeriesPoint(
            period=p,
            value=found.get(p, default).value,
            numerator=found.get(p, default).numerator,
            denominator=found.get(p, default).denominator,
        )
        for p in periods
    ]


def _raw_rate(n: int, d: int) -> Raw:
    return Raw(n / d if d else None, float(n), float(d))


# --- emitting -------------------------------------------------------------------------------


Change = tuple[str, str, Judged]  # (unit, window, new value)


def _payload(unit: str, window: str, as_of: str, j: Judged) -> dict[str, Any]:
    """The `kpi` event payload: what `KpiValue.model_dump(mode="json")` gives, built directly
    (a round of a province-wide batch emits thousands)."""
    return {
        "unit": unit,
        "window": window,
        "as_of": as_of,
        "kpi": {
            "id": j[0],
            "value": j[1],
            "numerator": j[2],
            "denominator": j[3],
            "target": j[4],
            "status": j[5],
        },
    }


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
    from its memory and stores with `store_changes`.)"""
    if not units:
        return 0
    windows = windows or list(WINDOWS)
    moment = _now(now)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CURRENT_LOCK})
    fresh = await _judged(session, units, windows, moment, None)
    stored = await current_of(session, units)
    changed: list[Change] = [
        (u, w, j)
        for (u, w), values in fresh.items()
        for j in values
        if stored.get((u, w, j[0])) != j
    ]
    rewritten = {(u, w) for u, w, _ in changed}
    await write_current(session, {key: fresh[key] for key in rewritten}, moment)
    if changed and emit:
        await publish_changes(session, changed, moment)
    return len(changed)


def _parse_row(kpis_json: str) -> dict[str, Judged]:
    return {k: (k, v[0], v[1], v[2], v[3], v[4]) for k, v in orjson.loads(kpis_json).items()}


async def write_current(
    session: AsyncSession, rows: dict[tuple[str, str], list[Judged]], as_of: datetime
) -> None:
    """Store whole (unit, window) rows of `kpi_current`, computed at `as_of`: every value of a
    row is exact at that moment (`_served` relies on it)."""
    if not rows:
        return
    keys = list(rows)
    await session.execute(
        text(
            """
            INSERT INTO kpi_current AS k (unit_code, time_window, as_of, kpis)
            SELECT r.u, r.w, CAST(:as_of AS timestamptz), r.k
            FROM unnest(CAST(:u AS text[]), CAST(:w AS text[]), CAST(:k AS text[])) AS r(u, w, k)
            ON CONFLICT (unit_code, time_window) DO UPDATE
                SET kpis = EXCLUDED.kpis, as_of = EXCLUDED.as_of
            """
        ),
        {
            "as_of": _now(as_of),
            "u": [k[0] for k in keys],
            "w": [k[1] for k in keys],
            "k": [
                orjson.dumps({j[0]: [j[1], j[2], j[3], j[4], j[5]] for j in rows[k]}).decode()
                for k in keys
            ],
        },
    )


async def store_changes(
    session: AsyncSession,
    rows: dict[tuple[str, str], list[Judged]],
    changed: list[Change],
    as_of: datetime,
    *,
    emit: bool = True,
) -> None:
    """Store the (unit, window) rows holding values known to have changed (the engine
    compares in memory) and publish one event per changed value, in the caller's
    transaction."""
    # PostgreSQL stores the rows while Python builds the events (one `sleep(0)` lets the
    # statement go out before the CPU-bound part; the session is not touched until it ends).
    stored = asyncio.ensure_future(write_current(session, rows, as_of))
    try:
        await asyncio.sleep(0)
        events = kpi_events(changed, as_of) if emit and changed else []
    finally:
        await stored
    if events:
        await publish(session, events)


async def current_of(
    session: AsyncSession, units: list[str] | None = None
) -> dict[tuple[str, str, str], Judged]:
    """What was last emitted, per (unit, window, kpi) (of `units`, default all)."""
    where = "WHERE unit_code = ANY(:u)" if units is not None else ""
    rows = await session.execute(
        text(f"SELECT unit_code, time_window, kpis FROM kpi_current {where}"),
        {"u": units} if units is not None else {},
    )
    return {(u, w, k): j for u, w, kpis in rows for k, j in _parse_row(kpis).items()}


# --- targets --------------------------------------------------------------------------------


async def list_targets(session: AsyncSession, unit_code: str) -> list[TargetOut]:
    """The target in force for every KPI at a unit, and where it comes from."""
    await get_unit(session, unit_code)
    targets = await targets_of(session, [unit_code], await config_of(session))
    return [
        TargetOut(
            kpi=k,
            unit=unit_code,
            target=targets[(unit_code, k)][0],
            source=targets[(unit_code, k)][1],
        )
        for k in CATALOGUE
    ]


async def set_target(
    session: AsyncSession,
    unit_code: str,
    kpi_id: str,
    target: float | None,
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> TargetOut:
    """Set (or, with None, remove) a unit's own target; it applies to the unit's subtree
    unless a unit below has its own. Statuses that change are emitted at once."""
    _check(kpi_id, None)
    await get_unit(session, unit_code)
    if target is None:
        await session.execute(
            text("DELETE FROM kpi_targets WHERE unit_code = :u AND kpi_id = :k"),
            {"u": unit_code, "k": kpi_id},
        )
    else:
        await session.execute(
            text(
                """
                INSERT INTO kpi_targets (unit_code, kpi_id, target, updated_by)
                VALUES (:u, :k, :t, :by)
                ON CONFLICT (unit_code, kpi_id) DO UPDATE SET target = EXCLUDED.target,
                    updated_by = EXCLUDED.updated_by, updated_at = now()
                """
            ),
            {"u": unit_code, "k": kpi_id, "t": target, "by": by},
        )
    below = [
        r[0]
        for r in await session.execute(
            text("SELECT descendant_code FROM unit_closure WHERE ancestor_code = :u"),
            {"u": unit_code},
        )
    ]
    await _rejudge(session, below, kpi_id, _now(now))
    found = await list_targets(session, unit_code)
    return next(t for t in found if t.kpi == kpi_id)


async def _rejudge(session: AsyncSession, units: list[str], kpi_id: str, moment: datetime) -> None:
    """A target changed: judge the stored values of `kpi_id` in `units` again, store and emit
    the targets and statuses that changed. Values do not depend on targets, so nothing is
    recomputed (and the stored values stay exact at their `as_of`: `_served` relies on it).
    The generation tells the engine to reload its targets and what was emitted."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CURRENT_LOCK})
    targets = await targets_of(session, units, await config_of(session))
    margin = (await config_of(session)).margin
    rows = await session.execute(
        text("SELECT unit_code, time_window, kpis FROM kpi_current WHERE unit_code = ANY(:u)"),
        {"u": units},
    )
    changed: list[Change] = []
    rewritten: dict[tuple[str, str], str] = {}
    for unit, window, kpis_json in rows:
        stored = orjson.loads(kpis_json)
        entry = stored.get(kpi_id)
        if entry is None:
            continue
        value, num, den, target, status = entry
        new_target = targets[(unit, kpi_id)][0]
        new_status = status_of(CATALOGUE[kpi_id], value, new_target, margin)
        if (new_target, new_status) != (target, status):
            stored[kpi_id] = [value, num, den, new_target, new_status]
            rewritten[(unit, window)] = orjson.dumps(stored).decode()
            changed.append((unit, window, (kpi_id, value, num, den, new_target, new_status)))
    if rewritten:
        # The values and their `as_of` stay: only the judgement changed.
        await session.execute(
            text(
                """
                UPDATE kpi_current k SET kpis = r.k
                FROM unnest(CAST(:u AS text[]), CAST(:w AS text[]), CAST(:k AS text[]))
                    AS r(u, w, k)
                WHERE k.unit_code = r.u AND k.time_window = r.w
                """
            ),
            {
                "u": [k[0] for k in rewritten],
                "w": [k[1] for k in rewritten],
                "k": list(rewritten.values()),
            },
        )
        await publish_changes(session, changed, moment)
    await session.execute(text("UPDATE kpi_state SET generation = generation + 1"))


def kpi_events(changed: list[Change], as_of: datetime) -> list[NewEvent]:
    """One `kpi` event per changed (unit, window, kpi), ordered by unit: the event log stores
    each unit's consecutive events in one row."""
    moment = _now(as_of).isoformat()
    return [
        NewEvent(
            type="kpi",
            unit_code=u,
            time_window=w,
            subject=j[0],
            payload=_payload(u, w, moment, j),
        )
        for u, w, j in sorted(changed, key=lambda c: c[0])
    ]


async def publish_changes(session: AsyncSession, changed: list[Change], as_of: datetime) -> None:
    """Publish `kpi_events(changed)` in the caller's transaction."""
    if changed:
        await publish(session, kpi_events(changed, as_of))
