"""The KPI engine (docs/kpis.md): catalogue, windows, incremental aggregates, KPI events and
`/api/v1/kpis`. Other rooms use only what is exported here; the app composes `router`,
`build_services(ctx)` and `register_cli`."""

from ioc.kpis import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.kpis.catalogue import CATALOGUE, Kpi, status_of, window_days
from ioc.kpis.cli import register_cli
from ioc.kpis.compute import refresh
from ioc.kpis.display import format_value, kpi_name, vi_number
from ioc.kpis.engine import KpiEngine, build_services
from ioc.kpis.models import KpiChild, KpiSeries, KpiSnapshot, KpiValue
from ioc.kpis.reads import kpi_value, snapshot
from ioc.kpis.rounds import rebuild, run_round
from ioc.kpis.series import COUNTER_KPIS, monthly_values, period_values, series
from ioc.kpis.terminal import children_table, kpi_table, legend
from ioc.kpis.values import Raw
from ioc.kpis.views import router

__all__ = [
    "CATALOGUE",
    "COUNTER_KPIS",
    "Kpi",
    "KpiChild",
    "KpiEngine",
    "KpiSeries",
    "KpiSnapshot",
    "KpiValue",
    "Raw",
    "build_services",
    "children_table",
    "format_value",
    "kpi_name",
    "kpi_table",
    "kpi_value",
    "legend",
    "monthly_values",
    "period_values",
    "rebuild",
    "refresh",
    "register_cli",
    "router",
    "run_round",
    "series",
    "snapshot",
    "status_of",
    "vi_number",
    "window_days",
]
