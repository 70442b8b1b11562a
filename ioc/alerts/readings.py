"""Readings: the alert room's view of the KPI engine — which KPIs exist, their names, and
their values now (names and formats: `ioc.kpis.kpi_name`, `format_value`).

Reached only through the `ioc.kpis` package (`CATALOGUE`, `kpi_value`): the catalogue is the
one source of KPI ids, Vietnamese names and kinds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis import CATALOGUE, kpi_value

__all__ = ["current_value", "is_time_based", "known_kpis"]


def known_kpis() -> dict[str, str]:
    """KPI id → Vietnamese name."""
    return {kid: k.name_vi for kid, k in CATALOGUE.items()}


def is_time_based(kpi: str) -> bool:
    """KPIs that change with the clock alone (overdue counts, the 766 rates judging open
    records now): re-evaluated on every tick."""
    found = CATALOGUE.get(kpi)
    return found is not None and found.moves_with_clock


async def current_value(
    session: AsyncSession, kpi: str, unit_code: str, window: str
) -> dict[str, Any]:
    """The KPI's value now as a `kpi` event payload dict. Engine errors propagate."""
    result = await kpi_value(session, kpi, unit_code, window)
    return {
        "id": kpi,
        "value": result.value,
        "numerator": result.numerator,
        "denominator": result.denominator,
        "target": result.target,
        "status": result.status,
    }
