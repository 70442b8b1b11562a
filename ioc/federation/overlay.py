"""The one overlay of upstream KPI values on local ones ("upstream wins when present").

On an instance mirroring an upstream `ioc` (`IOC_FEDERATION_KPIS=upstream`), the screens'
snapshot (`ioc.live`) and `GET /api/v1/kpis` (`ioc.kpis`) both show the upstream's stored
value of a (unit, window, kpi) where there is one, marked `"source": "upstream"`, through
`overlay_upstream()`.
"""

from __future__ import annotations

from typing import Any

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


def _overlay(
    upstream: dict[tuple[str, str], list[dict[str, Any]]],
    unit: str,
    windows: list[str],
    kpis: dict[str, list[dict[str, Any]]],
    children: dict[str, list[dict[str, Any]]],
) -> None:
    """Overlay `upstream` (from `_upstream_kpis`) on local KPI values, in place: per window,
    `kpis[window]` of `unit` and `children[window]`'s `{"unit", "kpis"}` entries. "Upstream
    wins when present", per (unit, window, kpi); KPIs only the upstream knows come after."""
    for window in windows:
        kpis[window] = _merged(kpis[window], upstream.get((unit, window), []))
        for child in children[window]:
            child["kpis"] = _merged(child["kpis"], upstream.get((child["unit"], window), []))


async def overlay_upstream(
    session: AsyncSession,
    unit: str,
    windows: list[str],
    kpis: dict[str, list[dict[str, Any]]],
    children: dict[str, list[dict[str, Any]]],
) -> bool:
    """Read and `_overlay` the stored upstream values of `unit` and its listed children (the
    screens' snapshot and `GET /api/v1/kpis` under `IOC_FEDERATION_KPIS=upstream`); False,
    changing nothing, when none is stored (a province, or nothing received yet)."""
    codes = {unit} | {c["unit"] for w in windows for c in children[w]}
    upstream = await _upstream_kpis(session, sorted(codes), windows)
    if not upstream:
        return False
    _overlay(upstream, unit, windows, kpis, children)
    return True


def _merged(local: list[dict[str, Any]], upstream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Local values in catalogue order, each replaced by the upstream's when it has one; KPIs
    only the upstream knows come after."""
    if not upstream:
        return local
    theirs = {k["id"]: k for k in upstream}
    merged = [theirs.pop(k["id"], k) for k in local]
    return merged + list(theirs.values())
