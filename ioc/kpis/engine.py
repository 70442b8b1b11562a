"""The KPI engine: a leased loop service that folds new source records into the aggregates
and emits `kpi` events, woken by `NOTIFY ioc_ingest` and by a periodic tick (for midnight
roll-overs and records becoming overdue with no new data).

One round is one transaction: the aggregates, the cursor, `kpi_current` and the events
commit together, so a crash never double-counts or skips, and an event is only ever
published for a value that is stored.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.db import Database, asyncpg_dsn
from ioc.kpis import aggregates
from ioc.kpis.catalogue import CATALOGUE, LOCAL_TZ, local_date
from ioc.kpis.compute import OverdueBase, move_resp_win
from ioc.kpis.service import BATCH_RECORDS, Change, publish_changes, refresh
from ioc.services import LoopService, lease_key

if TYPE_CHECKING:
    from ioc.api.app import AppContext

log = logging.getLogger("ioc.kpis")

INGEST_CHANNEL = "ioc_ingest"
_ENGINE_LOCK = lease_key("kpis.engine")
_OVERDUE = [k.id for k in CATALOGUE.values() if k.kind == "overdue"]
_NOT_MEDIAN = [k.id for k in CATALOGUE.values() if k.kind != "median"]
# For this transaction only: a round sorts and groups tens of thousands of histogram and
# fact rows (the median's histogram of 123 units x 5 windows spilled to disk at the default
# 4 MB); the engine is one leased process, so this is one session's memory.
_WORK_MEM = "SET LOCAL work_mem = '64MB'"


@dataclass
class RoundResult:
    records: int = 0
    events: int = 0
    rebuilt: bool = False
    more: bool = False


async def _closure_hash(session: AsyncSession) -> str:
    value = (
        await session.execute(
            text(
                "SELECT md5(coalesce(string_agg(ancestor_code || '>' || descendant_code, ';' "
                "ORDER BY ancestor_code, descendant_code), '')) FROM unit_closure"
            )
        )
    ).scalar_one()
    return str(value)


async def _next_hi(session: AsyncSession, cursor: int, limit: int) -> int:
    """The highest change_seq of the next `limit` changed records (or `cursor` if none)."""
    value = (
        await session.execute(
            text(
                """
                SELECT max(change_seq) FROM (
                    SELECT change_seq FROM (
                        (SELECT change_seq FROM dossiers WHERE change_seq > :c
                         ORDER BY change_seq LIMIT :n)
                        UNION ALL (SELECT change_seq FROM reports WHERE change_seq > :c
                         ORDER BY change_seq LIMIT :n)
                        UNION ALL (SELECT change_seq FROM documents WHERE change_seq > :c
                         ORDER BY change_seq LIMIT :n)
                        UNION ALL (SELECT change_seq FROM procedures WHERE change_seq > :c
                         ORDER BY change_seq LIMIT :n)
                    ) x ORDER BY change_seq LIMIT :n
                ) y
                """
            ),
            {"c": cursor, "n": limit},
        )
    ).scalar_one()
    return int(value) if value is not None else cursor


async def _all_units(session: AsyncSession) -> list[str]:
    return [r[0] for r in await session.execute(text("SELECT code FROM units ORDER BY code"))]


async def rebuild_aggregates(session: AsyncSession) -> int:
    """Empty the aggregates and fold every raw record in again; return how many."""
    await aggregates.clear(session)
    hi = await _next_hi(session, 0, 2**62)
    applied = await aggregates.apply_changes(session, 0, hi)
    await session.execute(text("UPDATE kpi_state SET change_cursor = :hi"), {"hi": hi})
    return applied.records


async def run_round(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    config_targets: dict[str, float] | None = None,
    warn_margin: float | None = None,
    batch: int = BATCH_RECORDS,
) -> RoundResult:
    """One engine round in the caller's transaction (see the module docstring)."""
    moment = (now or datetime.now(UTC)).astimezone(LOCAL_TZ)
    today = local_date(moment)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENGINE_LOCK})
    await session.execute(text(_WORK_MEM))
    state = (
        await session.execute(
            text(
                "SELECT change_cursor, initialised, closure_hash, last_run_at, last_local_day, "
                "config_targets, warn_margin FROM kpi_state FOR UPDATE"
            )
        )
    ).one()
    cursor, initialised, old_hash, last_run, last_day, old_targets, old_margin = state
    result = RoundResult()
    changes: list[Change] = []
    everything = False
    units: set[str] = set()
    median_units: set[str] = set()
    facts = False

    if config_targets is not None or warn_margin is not None:
        targets = config_targets if config_targets is not None else dict(old_targets)
        margin = warn_margin if warn_margin is not None else float(old_margin)
        if targets != dict(old_targets) or margin != float(old_margin):
            await session.execute(
                text("UPDATE kpi_state SET config_targets = CAST(:t AS jsonb), warn_margin = :m"),
                {"t": json.dumps(targets), "m": margin},
            )
            everything = True

    closure = await _closure_hash(session)
    if closure != old_hash:
        # The unit tree changed (a load, a reform): roll-ups must be redone from scratch.
        result.records = await rebuild_aggregates(session)
        result.rebuilt = True
        everything = True
        hi = int((await session.execute(text("SELECT change_cursor FROM kpi_state"))).scalar_one())
    else:
        hi = await _next_hi(session, cursor, batch)
        if hi > cursor:
            applied = await aggregates.apply_changes(session, cursor, hi)
            result.records = applied.records
            units = applied.units
            median_units = applied.median_units
            facts = applied.facts
            result.more = applied.records >= batch

    # The current windows' response histogram follows the facts (rebuilt on a new day).
    await move_resp_win(session, today, facts=facts)
    # Overdue counts move from what the last round stored (`OverdueBase`), unless the
    # aggregates were rebuilt or the clock went back.
    base = (
        OverdueBase(last_run, facts)
        if not result.rebuilt and last_run is not None and last_run <= moment
        else None
    )
    if last_day != today:
        everything = True  # local midnight: every windowed value may have rolled over
    elif last_run is not None:
        lo, up = sorted((last_run, moment))
        rows = await session.execute(
            text("SELECT DISTINCT unit_code FROM kpi_open WHERE due_at >= :lo AND due_at < :up"),
            {"lo": lo, "up": up},
        )
        due_units = {r[0] for r in rows} - units
        if due_units and not everything:
            await refresh(
                session,
                sorted(due_units),
                moment,
                kpis=_OVERDUE,
                defer=changes,
                overdue_base=base,
            )

    if everything:
        await refresh(
            session,
            await _all_units(session),
            moment,
            defer=changes,
            overdue_base=base,
            resp_win=True,
        )
    else:
        plain = units - median_units
        if median_units:
            await refresh(
                session,
                sorted(median_units),
                moment,
                defer=changes,
                overdue_base=base,
                resp_win=True,
            )
        if plain:
            await refresh(
                session,
                sorted(plain),
                moment,
                kpis=_NOT_MEDIAN,
                defer=changes,
                overdue_base=base,
            )
    if initialised:
        await publish_changes(session, changes, moment)
        result.events = len(changes)
    await session.execute(
        text(
            "UPDATE kpi_state SET change_cursor = greatest(change_cursor, :hi), "
            "initialised = true, closure_hash = :h, last_run_at = :at, last_local_day = :d"
        ),
        {"hi": hi, "h": closure, "at": moment, "d": today},
    )
    return result


async def rebuild(session: AsyncSession, *, now: datetime | None = None) -> RoundResult:
    """Recompute every aggregate from the raw records, then emit what (if anything) differs
    from the values last emitted — nothing, when the incremental path was right."""
    moment = (now or datetime.now(UTC)).astimezone(LOCAL_TZ)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENGINE_LOCK})
    await session.execute(text(_WORK_MEM))
    result = RoundResult(rebuilt=True)
    result.records = await rebuild_aggregates(session)
    initialised = bool(
        (await session.execute(text("SELECT initialised FROM kpi_state"))).scalar_one()
    )
    result.events = await refresh(session, await _all_units(session), moment, emit=initialised)
    await session.execute(
        text(
            "UPDATE kpi_state SET initialised = true, closure_hash = :h, last_run_at = :at, "
            "last_local_day = :d"
        ),
        {"h": await _closure_hash(session), "at": moment, "d": local_date(moment)},
    )
    return result


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
        # Newest `kpi_current.as_of` already exported as `ioc_kpi_value` gauges.
        self._gauge_mark = datetime(1970, 1, 1, tzinfo=UTC)

    def on_ingest(self, _payload: str | None) -> None:
        """Listener callback: new records were committed (or we may have missed some)."""
        self.wake()

    async def run_once(self) -> None:
        started = time.perf_counter()
        async with self.db.session() as session:
            result = await run_round(
                session, config_targets=self.config_targets, warn_margin=self.warn_margin
            )
        metrics.KPI_ROUND_SECONDS.observe(time.perf_counter() - started)
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
                    "SELECT unit_code, time_window, kpi_id, value, as_of FROM kpi_current "
                    "WHERE as_of > :mark"
                ),
                {"mark": self._gauge_mark},
            )
            for unit, window, kpi_id, value, as_of in rows:
                gauge = metrics.KPI_VALUE.labels(kpi=kpi_id, unit=unit, window=window)
                gauge.set(float("nan") if value is None else float(value))
                self._gauge_mark = max(self._gauge_mark, as_of)


def kpi_services(ctx: AppContext) -> list[LoopService]:
    """The engine, woken by every ingest commit; its handle kept in `ctx.rooms["kpis"]`."""
    engine = KpiEngine(
        ctx.db,
        config_targets=dict(ctx.settings.kpi_targets),
        warn_margin=ctx.settings.kpi_warn_margin,
    )
    ctx.listener.subscribe(INGEST_CHANNEL, engine.on_ingest)
    ctx.rooms["kpis"] = engine
    return [engine]
