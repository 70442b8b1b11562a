"""The KPI engine (CONTRACT §4): catalogue, windows, incremental aggregates, KPI events and
`/api/v1/kpis`. Other rooms use only what is exported here."""

from ioc.kpis.catalogue import CATALOGUE, LOCAL_TZ, WINDOWS, Kpi, status_of, window_days
from ioc.kpis.engine import KpiEngine, kpi_services, rebuild, run_round
from ioc.kpis.models import KpiChild, KpiSeries, KpiSnapshot, KpiValue
from ioc.kpis.service import kpi_value, refresh, series, snapshot

__all__ = [
    "CATALOGUE",
    "LOCAL_TZ",
    "WINDOWS",
    "Kpi",
    "KpiChild",
    "KpiEngine",
    "KpiSeries",
    "KpiSnapshot",
    "KpiValue",
    "kpi_services",
    "kpi_value",
    "rebuild",
    "refresh",
    "run_round",
    "series",
    "snapshot",
    "status_of",
    "window_days",
]
