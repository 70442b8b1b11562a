"""The KPI engine: a leased loop service that turns new source records into `kpi` events,
woken by `NOTIFY ioc_ingest` and by a periodic tick (for midnight roll-overs and records
becoming overdue with no new data).

A round is two transactions, so that its events do not wait for the aggregate writes:

1. `emit_round` reads the records changed since the cursor (their new contributions, derived
   by the same SQL as a rebuild) and their old contributions (projections), moves the
   engine's memory of the current windows (`ioc.kpis.memory`) by them, computes the values of
   the affected units, and commits together: the changed `kpi_current` rows, one `kpi` event
   per changed value, a journal row holding the new contributions, and the cursor.
2. `fold_journal` folds the journal into the aggregates (counters, open sets, histograms,
   projections) and deletes it.

A crash between the two leaves the journal row; it is folded before anything else, so nothing
is counted twice or lost, and an event is only ever published for a value that is stored. A
round that fails drops the memory, which is then rebuilt from the aggregates.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.db import Database, asyncpg_dsn
from ioc.events import INGEST_CHANNEL
from ioc.kpis import aggregates
from ioc.kpis.memory import (
    EngineMemory,
    Facts,
    document_facts,
    dossier_facts,
    load,
    report_facts,
)
from ioc.kpis.service import (
    BATCH_RECORDS,
    CURRENT_LOCK,
    config_of,
    current_of,
    refresh,
    store_changes,
    targets_of,
)
from ioc.localtime import LOCAL_TZ, local_date
from ioc.loops import LoopService, lease_key

if TYPE_CHECKING:
    from ioc.context import AppContext

log = logging.getLogger("ioc.kpis")

_ENGINE_LOCK = lease_key("kpis.engine")
# For this transaction only: a rebuild sorts and groups millions of fact rows; the engine is
# one leased process, so this is one session's memory.
_WORK_MEM = "SET LOCAL work_mem = '64MB'"


@dataclass
class RoundResult:
    records: int = 0
    events: int = 0
    rebuilt: bool = False
    more: bool = False


@dataclass
class MemoryBox:
    """The engine's memory between rounds: `None` until loaded, and after a round that failed
    (a round moves the memory before its transaction commits)."""

    memory: EngineMemory | None = None


_CLOSURE_HASH = (
    "SELECT md5(coalesce(string_agg(ancestor_code || '>' || descendant_code, ';' "
    "ORDER BY ancestor_code, descendant_code), '')) FROM unit_closure"
)


async def _closure_hash(session: AsyncSession) -> str:
    return str((await session.execute(text(_CLOSURE_HASH))).scalar_one())


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


async def rebuild_aggregates(session: AsyncSession) -> int:
    """Empty the aggregates (and any journal) and fold every raw record in again; return how
    many. Bumps the generation, so a running engine reloads its memory."""
    await aggregates.clear(session)
    hi = await _next_hi(session, 0, 2**62)
    applied = await aggregates.apply_changes(session, aggregates.Source(0, hi))
    await session.execute(
        text("UPDATE kpi_state SET change_cursor = :hi, generation = generation + 1"), {"hi": hi}
    )
    return applied.records


async def fold_journal(session: AsyncSession) -> int:
    """Fold every journaled round into the aggregates, oldest first, and delete the journal
    rows (a round's second transaction; after a crash, the first thing done). Returns how
    many rounds were folded."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENGINE_LOCK})
    ids = [r[0] for r in await session.execute(text("SELECT id FROM kpi_journal ORDER BY id"))]
    if ids:
        await session.execute(text(_WORK_MEM))
    for journal in ids:
        await aggregates.apply_changes(session, aggregates.Source(journal=journal))
        await session.execute(text("DELETE FROM kpi_journal WHERE id = :id"), {"id": journal})
    return len(ids)


_FEEDS = (
    ("dossiers", aggregates.DOSSIER_CONTRIBUTION, "kpi_dossier_proj", "dossier_id"),
    ("reports", aggregates.REPORT_CONTRIBUTION, "kpi_report_proj", "report_id"),
    ("documents", aggregates.DOCUMENT_CONTRIBUTION, "kpi_document_proj", "document_pk"),
)


async def _contributions(
    session: AsyncSession, lo: int, hi: int, ancestors: dict[str, list[str]]
) -> tuple[Facts, dict[str, str], int]:
    """The records in (lo, hi]: their new contributions and their old ones (projections), as
    facts; the journal's JSON per feed; how many records."""
    facts = Facts()
    journal: dict[str, str] = {}
    records = 0
    for feed, derive, projection, key in _FEEDS:
        # each record's new contribution beside its old one (the projection), in one read
        found = await session.execute(
            text(
                f"SELECT n.*, p.* FROM ({derive}) n LEFT JOIN {projection} p ON p.{key} = n.{key}"
            ),
            {"lo": lo, "hi": hi},
        )
        width = len(found.keys()) // 2
        names = list(found.keys())[:width]
        pairs = [(tuple(r[:width]), tuple(r[width:])) for r in found]
        if not pairs:
            continue
        records += len(pairs)
        # objects, as `jsonb_to_recordset` reads them back in the fold
        journal[feed] = orjson.dumps(
            [dict(zip(names, new, strict=True)) for new, _ in pairs]
        ).decode()
        for new, old in pairs:
            before = old if old[0] is not None else None
            if feed == "dossiers":
                dossier_facts(facts, before, new)
            elif feed == "reports":
                report_facts(facts, before, new)
            else:
                document_facts(facts, before, new, ancestors)
    procedures = [
        (str(r[0]), str(r[1]))
        for r in await session.execute(text(aggregates.CHANGED_PROCEDURES), {"lo": lo, "hi": hi})
    ]
    if procedures:
        records += len(procedures)
        journal["procedures"] = orjson.dumps(procedures).decode()
        facts.procedures.update(procedures)
    return facts, journal, records


async def _service_inputs(
    session: AsyncSession, facts: Facts
) -> tuple[dict[tuple[str, str], bool], dict[tuple[str, str], dict[date, int]]]:
    """What the memory cannot know about the services a round touched: whether a service whose
    catalogue rows changed is offered online now, and the online dossiers per day of a service
    that lost one (its last day may go back)."""
    offered: dict[tuple[str, str], bool] = {}
    if facts.procedures:
        keys = sorted(facts.procedures)
        offered = dict.fromkeys(keys, False)
        rows = await session.execute(
            text(
                """
                SELECT p.unit_code, p.code, bool_or(p.online)
                FROM procedures p
                JOIN unnest(CAST(:u AS text[]), CAST(:c AS text[])) AS k(unit_code, code)
                    ON k.unit_code = p.unit_code AND k.code = p.code
                GROUP BY 1, 2
                """
            ),
            {"u": [k[0] for k in keys], "c": [k[1] for k in keys]},
        )
        offered.update({(u, c): bool(o) for u, c, o in rows})
    shrunk = sorted(k for k, days in facts.online.items() if any(n < 0 for n in days.values()))
    days: dict[tuple[str, str], dict[date, int]] = {}
    if shrunk:
        rows = await session.execute(
            text(
                """
                SELECT d.unit_code, d.procedure_code, d.day, d.n
                FROM kpi_service_day d
                JOIN unnest(CAST(:u AS text[]), CAST(:c AS text[])) AS k(unit_code, code)
                    ON k.unit_code = d.unit_code AND k.code = d.procedure_code
                """
            ),
            {"u": [k[0] for k in shrunk], "c": [k[1] for k in shrunk]},
        )
        for u, c, d, n in rows:
            days.setdefault((u, c), {})[d] = int(n)
    return offered, days


async def _journal(
    session: AsyncSession,
    lo: int,
    hi: int,
    journal: dict[str, str],
    *,
    closure: str,
    moment: datetime,
) -> None:
    """The engine's new state and the round's journal row (if it read records), in one
    statement: it is sent before the round's CPU-bound part and completes meanwhile."""
    state = {"hi": hi, "h": closure, "at": moment, "d": local_date(moment)}
    update = (
        "UPDATE kpi_state SET change_cursor = greatest(change_cursor, :hi), "
        "initialised = true, closure_hash = :h, last_run_at = :at, last_local_day = :d"
    )
    if not journal:
        await session.execute(text(update), state)
        return
    await session.execute(
        text(
            f"WITH state AS ({update} RETURNING 1) "
            "INSERT INTO kpi_journal (lo, hi, dossiers, reports, documents, procedures) "
            "SELECT :lo, :hi, :dossiers, :reports, :documents, :procedures FROM state"
        ),
        {
            **state,
            "lo": lo,
            **{f: journal.get(f) for f in ("dossiers", "reports", "documents", "procedures")},
        },
    )


async def _load(
    session: AsyncSession, cursor: int, generation: int, moment: datetime, today: date
) -> EngineMemory:
    config = await config_of(session)
    units = [r[0] for r in await session.execute(text("SELECT code FROM units"))]
    return await load(
        session,
        cursor=cursor,
        generation=generation,
        moment=moment,
        today=today,
        targets=await targets_of(session, units, config),
        margin=config.margin,
    )


async def emit_round(
    session: AsyncSession,
    box: MemoryBox,
    *,
    now: datetime | None = None,
    config_targets: dict[str, float] | None = None,
    warn_margin: float | None = None,
    batch: int = BATCH_RECORDS,
) -> RoundResult:
    """A round's first transaction (the caller's): see the module docstring."""
    try:
        return await _emit(session, box, now, config_targets, warn_margin, batch)
    except BaseException:
        box.memory = None
        raise


async def _emit(
    session: AsyncSession,
    box: MemoryBox,
    now: datetime | None,
    config_targets: dict[str, float] | None,
    warn_margin: float | None,
    batch: int,
) -> RoundResult:
    moment = (now or datetime.now(UTC)).astimezone(LOCAL_TZ)
    today = local_date(moment)
    # The engine's lock, then kpi_current's (target changes write it too); then, in a
    # statement whose snapshot is taken under them, the state, whether a journal is waiting
    # and the unit tree's fingerprint.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:engine), pg_advisory_xact_lock(:current)"),
        {"engine": _ENGINE_LOCK, "current": CURRENT_LOCK},
    )
    state = (
        await session.execute(
            text(
                f"""
                SELECT change_cursor, initialised, closure_hash, last_run_at, config_targets,
                       warn_margin, generation, EXISTS (SELECT 1 FROM kpi_journal),
                       ({_CLOSURE_HASH})
                FROM kpi_state FOR UPDATE
                """
            )
        )
    ).one()
    cursor, initialised, old_hash, last_run, old_targets, old_margin, generation = state[:7]
    journal_waiting, closure = state[7], str(state[8])
    result = RoundResult()
    everything = False

    if config_targets is not None or warn_margin is not None:
        targets = config_targets if config_targets is not None else dict(old_targets)
        margin = warn_margin if warn_margin is not None else float(old_margin)
        if targets != dict(old_targets) or margin != float(old_margin):
            generation = (
                await session.execute(
                    text(
                        "UPDATE kpi_state SET config_targets = CAST(:t AS jsonb), "
                        "warn_margin = :m, generation = generation + 1 RETURNING generation"
                    ),
                    {"t": orjson.dumps(targets).decode(), "m": margin},
                )
            ).scalar_one()
            box.memory = None
            everything = True

    if journal_waiting:
        # A journal left by a round whose fold did not commit (a crash): fold it first.
        await fold_journal(session)
    if closure != old_hash:
        # The unit tree changed (a load, a reform): roll-ups must be redone from scratch.
        result.records = await rebuild_aggregates(session)
        result.rebuilt = True
        box.memory = None
        cursor, generation = (
            await session.execute(text("SELECT change_cursor, generation FROM kpi_state"))
        ).one()

    memory = box.memory
    if (
        memory is None
        or memory.cursor != cursor
        or memory.moment != last_run
        or memory.today != today
        or moment < memory.moment
    ):
        # First round, a new local day, the clock went back, or someone else moved the
        # aggregates (another replica, a rebuild): start again from the aggregates.
        memory = await _load(session, cursor, generation, moment, today)
        # The memory is ~100k long-lived objects (the due heap, services); a full garbage
        # collection walks them at random rounds. gc.freeze moves everything alive now out of
        # the collector's sight (what CPython offers for long-lived state); the memory forms no
        # reference cycles, so a replaced one is still freed by reference counting.
        gc.freeze()
        everything = True
    elif memory.generation != generation:
        # A target changed through the API (which re-judged and emitted it already).
        config = await config_of(session)
        memory.margin = config.margin
        memory.set_emitted(
            await current_of(session), await targets_of(session, memory.units, config)
        )
        memory.generation = generation

    hi = cursor
    facts = Facts()
    journal: dict[str, str] = {}
    if not result.rebuilt:
        hi = await _next_hi(session, cursor, batch)
        if hi > cursor:
            facts, journal, result.records = await _contributions(
                session, cursor, hi, memory.ancestors
            )
            result.more = result.records >= batch
    offered, service_days = await _service_inputs(session, facts)
    # The journal goes out before the round's CPU-bound part (moving the memory, judging),
    # so PostgreSQL stores it meanwhile; the session is not touched until it is awaited.
    journaled = asyncio.ensure_future(
        _journal(session, cursor, hi, journal, closure=closure, moment=moment)
    )
    try:
        await asyncio.sleep(0)
        touched = memory.fold(facts, moment, offered, service_days)
        units = memory.units if everything else sorted(touched)
        changes, rows = memory.judge(units)
    finally:
        await journaled
    await store_changes(session, rows, changes, moment, emit=bool(initialised))
    result.events = len(changes) if initialised else 0
    memory.cursor = max(cursor, hi)
    memory.moment = moment
    box.memory = memory
    return result


async def run_round(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    config_targets: dict[str, float] | None = None,
    warn_margin: float | None = None,
    batch: int = BATCH_RECORDS,
    box: MemoryBox | None = None,
) -> RoundResult:
    """One whole engine round (emit, then fold) in the caller's transaction. Without `box`
    the memory is loaded from the aggregates for this round alone."""
    result = await emit_round(
        session,
        box if box is not None else MemoryBox(),
        now=now,
        config_targets=config_targets,
        warn_margin=warn_margin,
        batch=batch,
    )
    await fold_journal(session)
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
    units = [r[0] for r in await session.execute(text("SELECT code FROM units ORDER BY code"))]
    result.events = await refresh(session, units, moment, emit=initialised)
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
