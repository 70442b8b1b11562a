"""An engine round, in two transactions, so that its events do not wait for the aggregates:

1. `emit_round` reads the records changed since the cursor (their new contributions, derived
   by the same SQL as a rebuild) and their old contributions (projections), moves the
   engine's memory of the current windows (`memory.py`) by them, computes the values of the
   affected units, and commits together: the changed `kpi_current` rows, one `kpi` event per
   changed value, a journal row holding the new contributions, and the cursor.
2. `fold_journal` folds the journal into the aggregates (counters, open sets, service usage,
   projections) and deletes it.

A crash between the two leaves the journal row; it is folded before anything else, so nothing
is counted twice or lost, and an event is only ever published for a value that is stored. A
round that fails drops the memory, which is then rebuilt from the aggregates.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis import aggregates
from ioc.kpis.catalogue import local_moment
from ioc.kpis.changes import Changes, count_records, next_hi, read_changes, service_inputs
from ioc.kpis.compute import refresh
from ioc.kpis.contributions import SOURCE_TABLES
from ioc.kpis.current import CURRENT_LOCK, current_of, store_changes
from ioc.kpis.load import load_memory
from ioc.kpis.memory import EngineMemory
from ioc.kpis.targets import config_of, targets_of
from ioc.localtime import local_date
from ioc.loops import lease_key
from ioc.units import tree_fingerprint, tree_fingerprint_sql

ENGINE_LOCK = lease_key("kpis.engine")
# A rebuild folds this many records per statement batch and computes this many units at a
# time: bounded temp tables, and progress to report on the way.
REBUILD_CHUNK = 200_000
REFRESH_UNITS = 200
# `progress(step, done, total)`, as `ioc.console.progress_reporter` gives one
Progress = Callable[[str, int, int | None], None]
# Records a round takes at most; the service wakes itself again when more wait.
BATCH_RECORDS = 50_000
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


@dataclass
class _State:
    """`kpi_state` as a round reads it under the locks, and the unit tree's fingerprint."""

    cursor: int
    initialised: bool
    closure_hash: str | None
    last_run: datetime | None
    config_targets: dict[str, float]
    margin: float
    generation: int
    journal_waiting: bool
    closure: str


async def rebuild_aggregates(
    session: AsyncSession, *, progress: Progress | None = None, chunk: int = REBUILD_CHUNK
) -> int:
    """Empty the aggregates (and any journal) and fold every raw record in again, `chunk`
    records at a time (as rounds fold them: each record once, in change order); return how
    many. Bumps the generation, so a running engine reloads its memory."""
    await aggregates.clear(session)
    total = await count_records(session) if progress else None
    records = lo = 0
    while (hi := await next_hi(session, lo, chunk)) > lo:
        records += await aggregates.apply_changes(session, aggregates.Source(lo, hi))
        lo = hi
        if progress:
            progress("folding records", records, max(total or 0, records))
    if progress:
        progress("folding records", records, records)
    await session.execute(
        text("UPDATE kpi_state SET change_cursor = :hi, generation = generation + 1"), {"hi": lo}
    )
    return records


async def fold_journal(session: AsyncSession) -> int:
    """Fold every journaled round into the aggregates, oldest first, and delete the journal
    rows (a round's second transaction; after a crash, the first thing done). Returns how
    many rounds were folded."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ENGINE_LOCK})
    ids = [r[0] for r in await session.execute(text("SELECT id FROM kpi_journal ORDER BY id"))]
    if ids:
        await session.execute(text(_WORK_MEM))
    for journal in ids:
        await aggregates.apply_changes(session, aggregates.Source(journal=journal))
        await session.execute(text("DELETE FROM kpi_journal WHERE id = :id"), {"id": journal})
    return len(ids)


async def _locked_state(session: AsyncSession) -> _State:
    """The engine's lock, then kpi_current's (target changes write it too); then, in a
    statement whose snapshot is taken under them, the state, whether a journal is waiting
    and the unit tree's fingerprint."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:engine), pg_advisory_xact_lock(:current)"),
        {"engine": ENGINE_LOCK, "current": CURRENT_LOCK},
    )
    row = (
        await session.execute(
            text(
                f"""
                SELECT change_cursor, initialised, closure_hash, last_run_at, config_targets,
                       warn_margin, generation, EXISTS (SELECT 1 FROM kpi_journal),
                       {tree_fingerprint_sql()}
                FROM kpi_state FOR UPDATE
                """
            )
        )
    ).one()
    return _State(
        cursor=row[0],
        initialised=bool(row[1]),
        closure_hash=row[2],
        last_run=row[3],
        config_targets=dict(row[4]),
        margin=float(row[5]),
        generation=row[6],
        journal_waiting=bool(row[7]),
        closure=str(row[8]),
    )


async def _store_config(
    session: AsyncSession,
    state: _State,
    config_targets: dict[str, float] | None,
    warn_margin: float | None,
) -> bool:
    """Write the engine's configuration into `kpi_state` when it differs (every reader judges
    with it); True when it changed (the generation moved: every value is judged again)."""
    if config_targets is None and warn_margin is None:
        return False
    targets = config_targets if config_targets is not None else state.config_targets
    margin = warn_margin if warn_margin is not None else state.margin
    if targets == state.config_targets and margin == state.margin:
        return False
    state.generation = (
        await session.execute(
            text(
                "UPDATE kpi_state SET config_targets = CAST(:t AS jsonb), "
                "warn_margin = :m, generation = generation + 1 RETURNING generation"
            ),
            {"t": orjson.dumps(targets).decode(), "m": margin},
        )
    ).scalar_one()
    return True


async def _recover(session: AsyncSession, state: _State, result: RoundResult) -> None:
    """Fold a journal left by a round whose fold did not commit (a crash); redo every
    roll-up from scratch when the unit tree changed (a load, a reform)."""
    if state.journal_waiting:
        await fold_journal(session)
    if state.closure != state.closure_hash:
        result.records = await rebuild_aggregates(session)
        result.rebuilt = True
        state.cursor, state.generation = (
            await session.execute(text("SELECT change_cursor, generation FROM kpi_state"))
        ).one()


async def fresh_memory(
    session: AsyncSession, cursor: int, generation: int, moment: datetime
) -> EngineMemory:
    """The memory loaded afresh from the aggregates, with the targets in force."""
    config = await config_of(session)
    units = [r[0] for r in await session.execute(text("SELECT code FROM units"))]
    return await load_memory(
        session,
        cursor=cursor,
        generation=generation,
        moment=moment,
        today=local_date(moment),
        targets=await targets_of(session, units, config),
        margin=config.margin,
    )


async def _current_memory(
    session: AsyncSession, memory: EngineMemory | None, state: _State, moment: datetime
) -> tuple[EngineMemory, bool]:
    """The memory this round moves, and whether every value must be computed again (it was
    loaded afresh)."""
    if (
        memory is None
        or memory.cursor != state.cursor
        or memory.moment != state.last_run
        or memory.today != local_date(moment)
        or moment < memory.moment
    ):
        # First round, a new local day, the clock went back, or someone else moved the
        # aggregates (another replica, a rebuild): start again from the aggregates.
        memory = await fresh_memory(session, state.cursor, state.generation, moment)
        # The memory is ~100k long-lived objects (the due heap, services); a full garbage
        # collection walks them at random rounds. gc.freeze moves everything alive now out of
        # the collector's sight (what CPython offers for long-lived state); the memory forms no
        # reference cycles, so a replaced one is still freed by reference counting.
        gc.freeze()
        return memory, True
    if memory.generation != state.generation:
        # A target changed through the API (which re-judged and emitted it already).
        config = await config_of(session)
        memory.margin = config.margin
        targets = await targets_of(session, memory.units, config)
        memory.set_emitted(await current_of(session), targets)
        memory.generation = state.generation
    return memory, False


async def _write_state(
    session: AsyncSession, state: _State, hi: int, journal: dict[str, str], moment: datetime
) -> None:
    """The engine's new state and the round's journal row (if it read records), in one
    statement."""
    params: dict[str, Any] = {
        "hi": hi,
        "h": state.closure,
        "at": moment,
        "d": local_date(moment),
    }
    update = (
        "UPDATE kpi_state SET change_cursor = greatest(change_cursor, :hi), "
        "initialised = true, closure_hash = :h, last_run_at = :at, last_local_day = :d"
    )
    if not journal:
        await session.execute(text(update), params)
        return
    params.update({"lo": state.cursor, **{t: journal.get(t) for t in SOURCE_TABLES}})
    await session.execute(
        text(
            f"WITH state AS ({update} RETURNING 1) "
            f"INSERT INTO kpi_journal (lo, hi, {', '.join(SOURCE_TABLES)}) "
            f"SELECT :lo, :hi, {', '.join(':' + t for t in SOURCE_TABLES)} FROM state"
        ),
        params,
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
        return await _emit(session, box, local_moment(now), config_targets, warn_margin, batch)
    except BaseException:
        box.memory = None
        raise


async def _emit(
    session: AsyncSession,
    box: MemoryBox,
    moment: datetime,
    config_targets: dict[str, float] | None,
    warn_margin: float | None,
    batch: int,
) -> RoundResult:
    result = RoundResult()
    state = await _locked_state(session)
    reconfigured = await _store_config(session, state, config_targets, warn_margin)
    await _recover(session, state, result)
    if reconfigured or result.rebuilt:
        box.memory = None
    memory, loaded = await _current_memory(session, box.memory, state, moment)
    hi, changes = state.cursor, Changes()
    if not result.rebuilt:
        hi = await next_hi(session, state.cursor, batch)
        if hi > state.cursor:
            changes = await read_changes(session, state.cursor, hi, memory.ancestors)
            result.records = changes.records
            result.more = changes.records >= batch
    offered, service_days = await service_inputs(session, changes.facts)
    await _write_state(session, state, hi, changes.journal, moment)
    touched = memory.fold(changes.facts, moment, offered, service_days)
    judged, rows = memory.judge(memory.units if loaded or reconfigured else sorted(touched))
    await store_changes(session, rows, judged, moment, emit=state.initialised)
    result.events = len(judged) if state.initialised else 0
    memory.cursor = max(state.cursor, hi)
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


async def rebuild(
    session: AsyncSession, *, now: datetime | None = None, progress: Progress | None = None
) -> RoundResult:
    """Recompute every aggregate from the raw records, then emit what (if anything) differs
    from the values last emitted — nothing, when the incremental path was right. `progress`
    hears of each chunk of records folded and each batch of units computed."""
    moment = local_moment(now)
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ENGINE_LOCK})
    await session.execute(text(_WORK_MEM))
    result = RoundResult(rebuilt=True)
    result.records = await rebuild_aggregates(session, progress=progress)
    initialised = bool(
        (await session.execute(text("SELECT initialised FROM kpi_state"))).scalar_one()
    )
    units = [r[0] for r in await session.execute(text("SELECT code FROM units ORDER BY code"))]
    for start in range(0, len(units), REFRESH_UNITS):
        batch = units[start : start + REFRESH_UNITS]
        result.events += await refresh(session, batch, moment, emit=initialised)
        if progress:
            progress("computing KPIs of units", start + len(batch), len(units))
    closure = await tree_fingerprint(session)
    await session.execute(
        text(
            "UPDATE kpi_state SET initialised = true, closure_hash = :h, last_run_at = :at, "
            "last_local_day = :d"
        ),
        {"h": closure, "at": moment, "d": local_date(moment)},
    )
    return result
