"""The one overlay of upstream KPI values on local ones ("upstream wins when present").

On an instance mirroring an upstream `ioc` (`IOC_FEDERATION_KPIS=upstream`), the screens'
snapshot (`ioc.live`) and `GET /api/v1/kpis` (`ioc.kpis`) both show the upstream's stored
value of a (unit, window, kpi) where there is one, marked `"source": "upstream"`, through
`overlay_upstream()`. It reads first and serialises only when there is something to
overlay, so an instance that mirrors nothing pays one indexed query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

UPSTREAM = "upstream"  # the `source` mark of a mirrored KPI value (events and snapshots)


def mirrored(row: dict[str, Any] | Any) -> dict[str, Any]:
    """A stored upstream value in the shape of a KPI value, marked as the upstream's."""
    return {
        "id": row["id"],
        "value": row["value"],
        "numerator": row["numerator"],
        "denominator": row["denominator"],
        "target": row["target"],
        "status": row["status"] or "no_data",
        "source": UPSTREAM,
    }


async def _upstream_kpis(
    session: AsyncSession, units: list[str], windows: list[str]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The stored upstream values of `units` × `windows`, keyed by (unit, window), each
    shaped like a KPI value with `"source": "upstream"` (for the screens' snapshot)."""
    rows = await session.execute(
        text(
            """
            SELECT unit_code AS unit, time_window AS window, kpi_id AS id, value, numerator,
                denominator, target, status
            FROM federation_kpis
            WHERE unit_code = ANY(:units) AND time_window = ANY(:windows)
            ORDER BY unit_code, time_window, kpi_id
            """
        ),
        {"units": units, "windows": windows},
    )
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows.mappings():
        found.setdefault((r["unit"], r["window"]), []).append(mirrored(r))
    return found


class _Child(Protocol):
    @property
    def unit(self) -> str: ...


class Snapshot(Protocol):
    """A KPI snapshot of a unit for a window, with its children (`ioc.kpis.KpiSnapshot`)."""

    @property
    def unit(self) -> str: ...

    @property
    def window(self) -> str: ...

    @property
    def children(self) -> Sequence[_Child]: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


async def overlay_upstream(
    session: AsyncSession, snapshots: Sequence[Snapshot]
) -> list[dict[str, Any]] | None:
    """The snapshots as JSON bodies, each value replaced by the upstream's stored one where
    there is one ("upstream wins when present", per unit, window and KPI; KPIs only the
    upstream knows come after) — or None when no upstream value is stored for them (a
    province, or nothing received yet): then the caller serialises them as they are."""
    codes = {s.unit for s in snapshots} | {c.unit for s in snapshots for c in s.children}
    windows = sorted({s.window for s in snapshots})
    upstream = await _upstream_kpis(session, sorted(codes), windows)
    if not upstream:
        return None
    bodies = [s.model_dump(mode="json") for s in snapshots]
    for body in bodies:
        window = body["window"]
        body["kpis"] = _merged(body["kpis"], upstream.get((body["unit"], window), []))
        for child in body["children"]:
            child["kpis"] = _merged(child["kpis"], upstream.get((child["unit"], window), []))
    return bodies


def _merged(local: list[dict[str, Any]], upstream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Local values in catalogue order, each replaced by the upstream's when it has one; KPIs
    only the upstream knows come after."""
    if not upstream:
        return local
    theirs = {k["id"]: k for k in upstream}
    merged = [theirs.pop(k["id"], k) for k in local]
    return merged + list(theirs.values())
