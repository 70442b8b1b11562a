"""`kpi_current` and the `kpi` events: what was last emitted per (unit, window, kpi), stored
as one row per (unit, window), and one event per changed value — written in the caller's
transaction, so an event is only ever published for a value that is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.events import NewEvent, publish
from ioc.kpis.catalogue import local_moment
from ioc.kpis.values import Change, Judged
from ioc.loops import lease_key

# Serialises writers of kpi_current (the engine, target changes, rebuild).
CURRENT_LOCK = lease_key("kpis.current")

Rows = dict[tuple[str, str], list[Judged]]  # (unit, window) -> every KPI, catalogue order


def parse_row(kpis_json: str) -> dict[str, Judged]:
    """A stored row's text: kpi id -> [value, numerator, denominator, target, status]."""
    return {k: Judged(k, *v) for k, v in orjson.loads(kpis_json).items()}


def row_text(values: list[Judged]) -> str:
    """The stored text of a row (what `parse_row` reads back)."""
    return orjson.dumps({j.id: list(j[1:]) for j in values}).decode()


async def current_of(
    session: AsyncSession, units: list[str] | None = None
) -> dict[tuple[str, str, str], Judged]:
    """What was last emitted, per (unit, window, kpi) (of `units`, default all)."""
    where = "WHERE unit_code = ANY(:u)" if units is not None else ""
    rows = await session.execute(
        text(f"SELECT unit_code, time_window, kpis FROM kpi_current {where}"),
        {"u": units} if units is not None else {},
    )
    return {(u, w, k): j for u, w, kpis in rows for k, j in parse_row(kpis).items()}


async def write_current(session: AsyncSession, rows: Rows, as_of: datetime) -> None:
    """Store whole (unit, window) rows of `kpi_current`, computed at `as_of`: every value of a
    row is exact at that moment (`reads.served` relies on it)."""
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
            "as_of": local_moment(as_of),
            "u": [k[0] for k in keys],
            "w": [k[1] for k in keys],
            "k": [row_text(rows[k]) for k in keys],
        },
    )


async def rewrite_texts(session: AsyncSession, texts: dict[tuple[str, str], str]) -> None:
    """Replace the stored text of existing rows, keeping their `as_of` (a target change
    re-judges values; it does not recompute them)."""
    await session.execute(
        text(
            """
            UPDATE kpi_current k SET kpis = r.k
            FROM unnest(CAST(:u AS text[]), CAST(:w AS text[]), CAST(:k AS text[])) AS r(u, w, k)
            WHERE k.unit_code = r.u AND k.time_window = r.w
            """
        ),
        {"u": [k[0] for k in texts], "w": [k[1] for k in texts], "k": list(texts.values())},
    )


async def store_changes(
    session: AsyncSession, rows: Rows, changed: list[Change], as_of: datetime, *, emit: bool
) -> None:
    """Store the (unit, window) rows holding changed values and publish one event per
    changed value (when `emit`), in the caller's transaction, one statement after the
    other."""
    await write_current(session, rows, as_of)
    if emit:
        await publish_changes(session, changed, as_of)


def _payload(unit: str, window: str, as_of: str, j: Judged) -> dict[str, Any]:
    """The `kpi` event payload: what `KpiValue.model_dump(mode="json")` gives, built directly
    (a round of a province-wide batch emits thousands)."""
    return {
        "unit": unit,
        "window": window,
        "as_of": as_of,
        "kpi": {
            "id": j.id,
            "value": j.value,
            "numerator": j.numerator,
            "denominator": j.denominator,
            "target": j.target,
            "status": j.status,
        },
    }


def kpi_events(changed: list[Change], as_of: datetime) -> list[NewEvent]:
    """One `kpi` event per changed (unit, window, kpi), ordered by unit: the event log stores
    each unit's consecutive events in one row."""
    moment = local_moment(as_of).isoformat()
    return [
        NewEvent(
            type="kpi",
            unit_code=c.unit,
            time_window=c.window,
            subject=c.value.id,
            payload=_payload(c.unit, c.window, moment, c.value),
        )
        for c in sorted(changed, key=lambda c: c.unit)
    ]


async def publish_changes(session: AsyncSession, changed: list[Change], as_of: datetime) -> None:
    """Publish `kpi_events(changed)` in the caller's transaction."""
    if changed:
        await publish(session, kpi_events(changed, as_of))
