"""The alert room's view of the KPI engine: which KPIs exist, their names, and their values.

`ioc.kpis` is a sibling room built in parallel; it is reached only through its package
(`CATALOGUE`, `kpi_value`). Until it exposes them, the catalogue of CONTRACT §4 (ids and
Vietnamese names kept in `format.KPI_NAMES`) is used and evaluation relies on KPI events.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ioc.alerts.format import KPI_NAMES

WINDOWS = ("today", "7d", "month", "quarter", "year")


def _kpis_module() -> Any:
    try:
        return importlib.import_module("ioc.kpis")
    except ImportError:
        return None


def known_kpis() -> dict[str, str]:
    """KPI id → Vietnamese name, from the engine's catalogue when available."""
    catalogue = getattr(_kpis_module(), "CATALOGUE", None)
    if not catalogue:
        return dict(KPI_NAMES)
    return {
        str(kid): str(getattr(k, "name_vi", None) or KPI_NAMES.get(kid, kid))
        for kid, k in catalogue.items()
    }


def is_time_based(kpi: str) -> bool:
    """KPIs that change with the clock alone (overdue counts): re-evaluated on every tick."""
    catalogue = getattr(_kpis_module(), "CATALOGUE", None)
    if catalogue and kpi in catalogue:
        return getattr(catalogue[kpi], "kind", "") == "overdue"
    return kpi.endswith("_overdue_open")


async def current_value(
    session: AsyncSession, kpi: str, unit_code: str, window: str
) -> dict[str, Any] | None:
    """The KPI's value now as a `kpi` payload dict, or None when the engine offers no
    `kpi_value` (then evaluation waits for KPI events). Engine errors propagate."""
    fn = getattr(_kpis_module(), "kpi_value", None)
    if fn is None:
        return None
    result = await fn(session, kpi, unit_code, window)
    return {
        "id": kpi,
        "value": getattr(result, "value", None),
        "numerator": getattr(result, "numerator", None),
        "denominator": getattr(result, "denominator", None),
        "target": getattr(result, "target", None),
        "status": getattr(result, "status", None),
    }
