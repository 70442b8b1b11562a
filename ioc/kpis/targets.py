"""Targets: the one in force at a unit (the nearest override up the tree, else the
configuration, else the catalogue's default), listing and changing them. A change re-judges
the stored values of the unit's subtree at once and emits the statuses that changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.errors import NotFound
from ioc.kpis.catalogue import CATALOGUE, local_moment, status_of
from ioc.kpis.current import CURRENT_LOCK, publish_changes, rewrite_texts
from ioc.kpis.models import TargetOut
from ioc.kpis.values import Change, Judged
from ioc.units import ancestor_rows_sql, get_unit, subtree

# (unit, kpi) -> (target, where it comes from: unit, inherited:<code>, config, catalogue)
Targets = dict[tuple[str, str], tuple[float | None, str]]


@dataclass(frozen=True, slots=True)
class Config:
    """The engine's configuration as it wrote it into `kpi_state` (every reader judges with
    it): targets per KPI (`Settings.kpi_targets`) and the warn margin."""

    targets: dict[str, float]
    margin: float


async def config_of(session: AsyncSession) -> Config:
    row = (await session.execute(text("SELECT config_targets, warn_margin FROM kpi_state"))).first()
    if row is None:
        return Config({}, 0.05)
    return Config({k: float(v) for k, v in dict(row[0]).items()}, float(row[1]))


def check_kpi(kpi_id: str) -> None:
    if kpi_id not in CATALOGUE:
        raise NotFound(
            f"unknown KPI {kpi_id!r}; GET /api/v1/kpis/catalogue lists the KPI ids: "
            + ", ".join(CATALOGUE)
        )


async def targets_of(session: AsyncSession, units: list[str], config: Config) -> Targets:
    """(unit, kpi) → (target, where it comes from): the nearest unit override up the tree,
    else the configured default, else the catalogue's."""
    out: Targets = {}
    for unit in units:
        for kpi in CATALOGUE.values():
            if kpi.id in config.targets:
                out[(unit, kpi.id)] = (config.targets[kpi.id], "config")
            else:
                out[(unit, kpi.id)] = (kpi.target, "catalogue")
    rows = await session.execute(
        text(
            f"""
            SELECT DISTINCT ON (c.descendant_code, t.kpi_id)
                   c.descendant_code, t.kpi_id, t.target, t.unit_code
            FROM {ancestor_rows_sql(":units")} c
            JOIN kpi_targets t ON t.unit_code = c.ancestor_code
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


async def list_targets(session: AsyncSession, unit_code: str) -> list[TargetOut]:
    """The target in force for every KPI at a unit, and where it comes from."""
    await get_unit(session, unit_code)
    targets = await targets_of(session, [unit_code], await config_of(session))
    found = []
    for kpi_id in CATALOGUE:
        target, source = targets[(unit_code, kpi_id)]
        found.append(TargetOut(kpi=kpi_id, unit=unit_code, target=target, source=source))
    return found


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
    check_kpi(kpi_id)
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
    below = await subtree(session, unit_code)
    await _rejudge(session, below, kpi_id, local_moment(now))
    found = await list_targets(session, unit_code)
    return next(t for t in found if t.kpi == kpi_id)


async def _rejudge(session: AsyncSession, units: list[str], kpi_id: str, moment: datetime) -> None:
    """A target changed: judge the stored values of `kpi_id` in `units` again, store and emit
    the targets and statuses that changed. Values do not depend on targets, so nothing is
    recomputed (and the stored values stay exact at their `as_of`: `reads.served` relies on
    it). The generation tells the engine to reload its targets and what was emitted."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CURRENT_LOCK})
    config = await config_of(session)
    targets = await targets_of(session, units, config)
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
        new_status = status_of(CATALOGUE[kpi_id], value, new_target, config.margin)
        if (new_target, new_status) != (target, status):
            stored[kpi_id] = [value, num, den, new_target, new_status]
            rewritten[(unit, window)] = orjson.dumps(stored).decode()
            judged = Judged(kpi_id, value, num, den, new_target, new_status)
            changed.append(Change(unit, window, judged))
    if rewritten:
        await rewrite_texts(session, rewritten)
        await publish_changes(session, changed, moment)
    await session.execute(text("UPDATE kpi_state SET generation = generation + 1"))
