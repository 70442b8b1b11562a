"""The KPI engine as a service: leased (one replica), woken by `NOTIFY ioc_ingest` and by a
periodic tick (for midnight roll-overs and records becoming overdue with no new data). Each
run is one round (`rounds.py`): its events committed first, then its fold.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import text

from ioc import metrics
from ioc.db import Database, asyncpg_dsn
from ioc.events import INGEST_CHANNEL
from ioc.kpis.rounds import MemoryBox, emit_round, fold_journal
from ioc.loops import LoopService

if TYPE_CHECKING:
    from ioc.context import AppContext

log = logging.getLogger("ioc.kpis")


class KpiEngine(LoopService):
    """Leased: exactly one replica folds records in and emits KPI events."""

    name = "kpis"
    leased = True
    loop_seconds = 5.0

    def __init__(
        self,
        db: Database,
        *,
        config_targets: dict[str, float] | None = None,
        warn_margin: float | None = None,
        loop_seconds: float | None = None,
    ) -> None:
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=loop_seconds)
        self.db = db
        self.config_targets = config_targets
        self.warn_margin = warn_margin
        self.box = MemoryBox()
        # Newest `kpi_current.as_of` already exported as `ioc_kpi_value` gauges.
        self._gauge_mark = datetime(1970, 1, 1, tzinfo=UTC)

    def on_ingest(self, _payload: str | None) -> None:
        """Listener callback: new records were committed (or we may have missed some)."""
        self.wake()

    async def run_once(self) -> None:
        started = time.perf_counter()
        try:
            async with self.db.session() as session:
                result = await emit_round(
                    session,
                    self.box,
                    config_targets=self.config_targets,
                    warn_margin=self.warn_margin,
                )
        except BaseException:
            self.box.memory = None  # moved by a round that did not commit
            raise
        metrics.KPI_ROUND_SECONDS.observe(time.perf_counter() - started)
        # The events are committed; the aggregates follow in their own transaction.
        started = time.perf_counter()
        async with self.db.session() as session:
            await fold_journal(session)
        metrics.KPI_FOLD_SECONDS.observe(time.perf_counter() - started)
        metrics.KPI_RECORDS.inc(result.records)
        metrics.KPI_EVENTS.inc(result.events)
        if result.records or result.events:
            log.info(
                "kpis: %d records folded in, %d kpi events%s",
                result.records,
                result.events,
                " (rebuilt)" if result.rebuilt else "",
            )
        if result.events or result.rebuilt or self._gauge_mark.year == 1970:
            await self._export_gauges()
        if result.more:
            self.wake()

    async def _export_gauges(self) -> None:
        """Mirror what changed in `kpi_current` into `ioc_kpi_value{kpi,unit,window}` (after the
        round committed; only the replica holding the lease exports them)."""
        async with self.db.session() as session:
            rows = await session.execute(
                text(
                    "SELECT unit_code, time_window, kpis, as_of FROM kpi_current "
                    "WHERE as_of > :mark"
                ),
                {"mark": self._gauge_mark},
            )
            for unit, window, kpis, as_of in rows:
                for kpi_id, entry in orjson.loads(kpis).items():
                    value = entry[0]
                    gauge = metrics.KPI_VALUE.labels(kpi=kpi_id, unit=unit, window=window)
                    gauge.set(float("nan") if value is None else float(value))
                self._gauge_mark = max(self._gauge_mark, as_of)


def build_services(ctx: AppContext) -> list[LoopService]:
    """The engine, woken by every ingest commit; kept in `ctx.handles`."""
    engine = KpiEngine(
        ctx.db,
        config_targets=dict(ctx.settings.kpi_targets),
        warn_margin=ctx.settings.kpi_warn_margin,
    )
    ctx.listener.subscribe(INGEST_CHANNEL, engine.on_ingest)
    ctx.handles.add(engine)
    return [engine]
