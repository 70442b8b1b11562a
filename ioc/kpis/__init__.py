"""The KPI engine (docs/kpis.md): catalogue, windows, incremental aggregates, KPI events and
`/api/v1/kpis`. Other rooms use only what is exported here."""

from ioc.kpis.catalogue import CATALOGUE, LOCAL_TZ, WINDOWS, Kpi, status_of, window_days
from ioc.kpis.compute import refresh
from ioc.kpis.engine import INGEST_CHANNEL, KpiEngine, kpi_services
from ioc.kpis.models import KpiChild, KpiSeries, KpiSnapshot, KpiValue
from ioc.kpis.reads import kpi_value, snapshot
from ioc.kpis.rounds import rebuild, run_round
from ioc.kpis.series import series

__all__ = [
    "CATALOGUE",
    "INGEST_CHANNEL",
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
