"""The ingest pipeline: records → PostgreSQL, exactly once, set-based.

One batch is one transaction, and every feed goes through the same `upsert`:
1. resolve every record's unit reference (GSO code, or organ id through `organs`) in one
   query; unresolvable records, and records outside the sender's unit, become rejections;
2. keep, per key, only the newest version within the batch (the same id twice would make
   `ON CONFLICT DO UPDATE` touch a row twice);
3. COPY the survivors into a temporary staging table whose columns are derived from the
   target's `Table` (`ioc.collectors.tables`), read from the record's attributes;
4. take the ingest advisory lock (architecture §1: change_seq order = commit order) and run
   one `INSERT … SELECT … ON CONFLICT … DO UPDATE … WHERE <newer> AND <changed>`; every
   inserted or really changed row gets `change_seq = nextval('record_change_seq')`, an
   unchanged or older re-sent record gets nothing; status changes are appended to history
   in the same statement;
5. `pg_notify('ioc_ingest', feed)` when something changed (sent at commit).
What differs between feeds (key, version order, what counts as a change, history) is one
`Upsert` value each: `DOSSIERS`, `REPORTS`, `PROCEDURES`. Progress steps (`store_steps`)
append history and move a dossier's status; documents are stored one by one (`documents`).
The caller owns the transaction (the request's unit of work, or `db.session()`), so a pull
collector commits its cursor together with the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Generic, TypeVar

import asyncpg
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.collectors import tables
from ioc.collectors.dossier_facts import (
    NOT_ACCEPTING,
    SUPPLEMENT_COLUMNS,
    choose_units,
    close_when_seen,
    infer_finished,
    step_facts,
    unit_candidates,
)
from ioc.collectors.dossiers import STATUS_RANK, STATUS_RANK_SQL
from ioc.collectors.records import (
    AgencyReportRecord,
    DossierRecord,
    IngestResult,
    ProcedureRecord,
    ProgressStep,
    Rejection,
    ReportRecord,
)
from ioc.collectors.reports import STATUS_RANK as REPORT_RANK
from ioc.collectors.reports import STATUS_RANK_SQL as REPORT_RANK_SQL
from ioc.db import driver_connection
from ioc.events import INGEST_CHANNEL
from ioc.units import subtree_sql

LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('ioc.ingest'))"

R = TypeVar("R", DossierRecord, ReportRecord, ProcedureRecord, AgencyReportRecord)
# Completes records before placement: (connection, source, records, rejected) → records kept.
Prepare = Callable[[asyncpg.Connection, str, list[R], list[Rejection]], Awaitable[list[R]]]


async def raw_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction."""
    return await driver_connection(session)


async def resolve_units(conn: asyncpg.Connection, refs: Iterable[str]) -> dict[str, str]:
    """Unit reference → GSO code, for refs that are unit codes or mapped organ ids."""
    wanted = sorted(set(refs))
    rows = await conn.fetch(
        """
        SELECT code AS ref, code FROM units WHERE code = ANY($1::text[])
        UNION ALL
        SELECT organ_id, unit_code FROM organs WHERE organ_id = ANY($1::text[])
        """,
        wanted,
    )
    return {r["ref"]: r["code"] for r in rows}


def _unit_reason(ref: str, field: str) -> str:
    return (
        f"{field}: unknown unit {ref!r} (neither a loaded GSO unit code nor a mapped organ id; "
        "load it with `ioc units load` / `ioc organs load`, then replay)"
    )


async def scope_units(conn: asyncpg.Connection, unit: str | None) -> frozenset[str] | None:
    """The codes a collector token scoped to `unit` may send records for (None = any)."""
    if unit is None:
        return None
    rows = await conn.fetch(f"SELECT * FROM {subtree_sql('$1')} AS subtree", unit)
    return frozenset(r[0] for r in rows)


def place_units(
    records: list[R],
    units: dict[str, str],
    rejected: list[Rejection],
    field: str,
    allowed: frozenset[str] | None = None,
) -> list[R]:
    """Set `unit_code` on each record; records whose unit is unknown, or outside the
    sender's scope, are rejected."""
    kept: list[R] = []
    for rec in records:
        code = units.get(rec.unit_ref)
        reason = None
        if code is None:
            reason = _unit_reason(rec.unit_ref, field)
        elif allowed is not None and code not in allowed:
            reason = f"{field}: unit {code} is outside this collector token's unit"
        if reason is not None:
            fmt = (
                rec.format
                if isinstance(rec, ReportRecord | AgencyReportRecord)
                else _format_of(rec)
            )
            rejected.append(
                Rejection(rec.index, _record_id(rec), [reason], rec.raw, fmt, rec.unit_ref)
            )
            continue
        rec.unit_code = code
        kept.append(rec)
    return kept


async def placed_records(
    conn: asyncpg.Connection,
    records: list[R],
    rejected: list[Rejection],
    field: str,
    scope: str | None,
) -> list[R]:
    """Resolve the records' units, check them against the sender's scope, and keep the ones
    that belong; the others are added to `rejected` with the reason."""
    units = await resolve_units(conn, (r.unit_ref for r in records))
    allowed = await scope_units(conn, scope)
    return place_units(records, units, rejected, field, allowed)


def _record_id(
    rec: DossierRecord | ReportRecord | ProcedureRecord | AgencyReportRecord,
) -> str:
    return rec.code if isinstance(rec, ProcedureRecord) else rec.source_id


def _format_of(rec: object) -> str:
    return "dossier" if isinstance(rec, DossierRecord) else "procedure"


def newest_per_key(
    records: Sequence[R], key: Callable[[R], Hashable], version: Callable[[R], Any]
) -> list[R]:
    """One record per key: the highest version, the later one in the batch on a tie."""
    best: dict[Hashable, R] = {}
    for rec in records:
        k = key(rec)
        current = best.get(k)
        if current is None or version(rec) >= version(current):
            best[k] = rec
    return list(best.values())


# --- the upsert: one algorithm for every record table ----------------------------------

# Columns the upsert sets itself rather than copying from a record.
_SET_BY_STORE = frozenset({"id", "change_seq", "created_at", "updated_at"})


@dataclass(frozen=True, slots=True)
class History:
    """Where an upsert appends `(record id, status, at)` when a record is new or its status
    changed; `values` are further (column, SQL literal) pairs (`("origin", "'sync'")`)."""

    table: Table
    record_id: str
    values: tuple[tuple[str, str], ...] = ()


class Upsert(Generic[R]):
    """How records of one feed land in their table, derived from the `Table`.

    The staged columns are the table's columns bar `source` (a parameter of the batch) and
    the ones the store sets itself (`_SET_BY_STORE`); each is read from the record attribute
    of the same name, so a column added to the table is staged once the record has it.
    `key` is the conflict target; within a batch only the highest `version` per key is kept.
    `newer` (SQL, for alias `{t}` = `EXCLUDED` or the stored row) orders versions in the
    database; an update happens only when it is not older and one of `changed` differs.
    `merge` gives a column a rule of its own on update (SQL; `t` = the stored row) instead
    of taking the new value. `prepare` completes the records before they are placed (what
    a record cannot know alone: a unit from its fallbacks, a time first seen now)."""

    feed: str
    table: Table
    unit_field: str
    version: Callable[[R], Any]
    columns: list[str]
    key: Callable[[R], Hashable]
    row: Callable[[R], tuple[Any, ...]]
    stage: str
    stage_ddl: str
    sql: str
    prepare: Prepare[R] | None

    def __init__(
        self,
        feed: str,
        table: Table,
        *,
        key: tuple[str, ...],
        unit_field: str,
        version: Callable[[R], Any],
        changed: tuple[str, ...],
        newer: str | None = None,
        history: History | None = None,
        merge: tuple[tuple[str, str], ...] = (),
        prepare: Prepare[R] | None = None,
    ) -> None:
        self.feed = feed
        self.prepare = prepare
        self.table = table
        self.unit_field = unit_field
        self.version = version
        self.columns = [
            c.name for c in table.columns if c.name not in _SET_BY_STORE and c.name != "source"
        ]
        fields = [k for k in key if k != "source"]
        self.key = attrgetter(*fields)
        self.row = attrgetter(*self.columns)
        self.stage = f"ioc_stage_{table.name}"
        # Typed as the target's own columns (CREATE TABLE … AS … WITH NO DATA).
        self.stage_ddl = (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {', '.join(self.columns)} FROM {table.name} WITH NO DATA"
        )
        self.sql = _upsert_sql(self, key, changed, newer, history, dict(merge))


def _upsert_sql(
    up: Upsert[Any],
    key: tuple[str, ...],
    changed: tuple[str, ...],
    newer: str | None,
    history: History | None,
    merge: dict[str, str],
) -> str:
    """One statement: insert or update every staged row, give each inserted or really
    changed row a new `change_seq`, append history, and count inserted/updated.

    Inserted or updated: `xmax = 0` only on a freshly inserted row version. The status a
    row had before this statement: all parts of one statement read the same snapshot, in
    which the rows `up` inserts or updates are not yet visible (PostgreSQL docs,
    "Data-Modifying Statements in WITH"), so the history reads the old version by primary
    key, for updated rows only. (The ingest lock is taken before the statement starts, so
    its snapshot already holds every earlier batch.)"""
    table = up.table.name
    columns = ", ".join(up.columns)
    assign = ", ".join(f"{c} = {merge.get(c, f'EXCLUDED.{c}')}" for c in up.columns if c not in key)
    conditions = []
    if newer is not None:
        conditions.append(f"{newer.format(t='EXCLUDED')} >= {newer.format(t='t')}")
    conditions.append(
        "(" + " OR ".join(f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in changed) + ")"
    )
    returning = "t.xmax = 0 AS inserted"
    append = ""
    if history is not None:
        returning = "t.id, t.status, t.source_updated_at, " + returning
        extra_columns = "".join(f", {c}" for c, _ in history.values)
        extra_values = "".join(f", {v}" for _, v in history.values)
        append = f""", hist AS (
    INSERT INTO {history.table.name} ({history.record_id}, status, at{extra_columns})
    SELECT up.id, up.status, up.source_updated_at{extra_values} FROM up
    WHERE up.inserted
       OR up.status IS DISTINCT FROM (SELECT old.status FROM {table} old WHERE old.id = up.id)
    ON CONFLICT DO NOTHING
)"""
    return f"""
WITH up AS (
    INSERT INTO {table} AS t (source, {columns}, change_seq)
    SELECT $1::text, {columns}, nextval('record_change_seq') FROM {up.stage}
    ON CONFLICT ({", ".join(key)}) DO UPDATE SET
        {assign}, change_seq = nextval('record_change_seq'), updated_at = now()
    WHERE {" AND ".join(conditions)}
    RETURNING {returning}
){append}
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM up
"""


async def _prepare_dossiers(
    conn: asyncpg.Connection, source: str, records: list[DossierRecord], rejected: list[Rejection]
) -> list[DossierRecord]:
    """A dossier without `MaDonVi` placed by its fallbacks (or rejected); a finish or closing
    the source does not date, dated when ioc first sees it (`ioc.collectors.dossier_facts`)."""
    records = choose_units(records, await resolve_units(conn, unit_candidates(records)), rejected)
    seen_at = datetime.now(UTC)
    await infer_finished(conn, source, records, seen_at)
    close_when_seen(records, seen_at)
    return records


# Columns with a merge rule of their own (docs/collectors.md): the first closing is kept, a
# dossier once accepted stays so, and a sync whose supplement list is empty keeps what the
# progress steps recorded.
_DOSSIER_MERGE = (
    ("closed_at", "LEAST(t.closed_at, EXCLUDED.closed_at)"),
    ("accepted", f"t.accepted OR EXCLUDED.status NOT IN {NOT_ACCEPTING}"),
    *(
        (c, f"CASE WHEN EXCLUDED.supplement_count > 0 THEN EXCLUDED.{c} ELSE t.{c} END")
        for c in SUPPLEMENT_COLUMNS
    ),
)

DOSSIERS: Upsert[DossierRecord] = Upsert(
    "dossiers",
    tables.dossiers,
    key=("source", "source_id"),
    unit_field="MaDonVi",
    version=lambda r: (r.source_updated_at, STATUS_RANK[r.status - 1]),
    newer=f"({{t}}.source_updated_at, ({STATUS_RANK_SQL})[{{t}}.status])",
    changed=("raw", "status", "unit_code"),
    history=History(tables.dossier_history, "dossier_id", (("origin", "'sync'"),)),
    merge=_DOSSIER_MERGE,
    prepare=_prepare_dossiers,
)
REPORTS: Upsert[ReportRecord] = Upsert(
    "reports",
    tables.reports,
    key=("source", "source_id"),
    unit_field="unit",
    version=lambda r: (r.source_updated_at, REPORT_RANK[r.status]),
    newer=f"({{t}}.source_updated_at, {REPORT_RANK_SQL.format(col='{t}.status')})",
    changed=("raw", "unit_code"),
    history=History(tables.report_history, "report_id"),
)
# A catalogue has no version of its own: the last entry received wins.
PROCEDURES: Upsert[ProcedureRecord] = Upsert(
    "procedures",
    tables.procedures,
    key=("source", "code", "unit_code"),
    unit_field="MaDonVi",
    version=lambda r: r.index,
    changed=("raw",),
)


async def upsert(
    session: AsyncSession,
    up: Upsert[R],
    source: str,
    records: list[R],
    rejected: list[Rejection],
    scope: str | None = None,
) -> IngestResult:
    """Store parsed records of one feed exactly once: place their units (unknown or
    out-of-scope ones are added to `rejected`), keep the newest per key, COPY them into the
    staging table, and upsert them under the ingest lock; NOTIFY when something changed."""
    conn = await raw_connection(session)
    result = IngestResult(up.feed)
    if up.prepare is not None:
        records = await up.prepare(conn, source, records, rejected)
    valid = await placed_records(conn, records, rejected, up.unit_field, scope)
    result.accepted = len(valid)
    rows = [up.row(r) for r in newest_per_key(valid, up.key, up.version)]
    if rows:
        await _stage(conn, up, rows)
        await conn.execute(LOCK_SQL)
        counts = await conn.fetchrow(up.sql, source)
        assert counts is not None
        result.inserted, result.updated = counts["inserted"], counts["updated"]
    result.unchanged = result.accepted - result.inserted - result.updated
    if result.inserted or result.updated:
        await notify(conn, up.feed)
    return result


async def _stage(conn: asyncpg.Connection, up: Upsert[Any], rows: list[tuple[Any, ...]]) -> None:
    # One temp table per connection, reused across batches (no catalog churn per batch);
    # emptied first because a transaction may ingest more than one batch (replay). JIT
    # compilation costs more than it saves on statements of this size. One round trip.
    await conn.execute(f"{up.stage_ddl}; DELETE FROM {up.stage}; SET LOCAL jit = off")
    # Binary COPY (asyncpg encodes the tuples in C). No ANALYZE: the upsert reads the
    # staging table once, start to end, and joins nothing to it (the old rows it needs are
    # looked up by primary key), so no plan depends on the staging table's statistics.
    await conn.copy_records_to_table(up.stage, records=rows, columns=up.columns)


async def notify(conn: asyncpg.Connection, feed: str) -> None:
    """Queue `NOTIFY ioc_ingest, '<feed>'`, sent when the transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, feed)


# --- progress steps ---------------------------------------------------------------------

_APPLY_STEPS = f"""
WITH steps AS (
    SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::timestamptz[], $4::text[],
                         $5::text[], $6::text[], $7::text[])
        AS s(dossier_id, status, at, actor, department, note, raw)
), hist AS (
    INSERT INTO dossier_history (dossier_id, status, at, origin, actor, department, note, raw)
    SELECT dossier_id, status, at, 'progress', actor, department, note, raw::jsonb FROM steps
    ON CONFLICT DO NOTHING
    RETURNING 1
), latest AS (
    SELECT DISTINCT ON (dossier_id) dossier_id, status, at FROM steps
    ORDER BY dossier_id, at DESC, ({STATUS_RANK_SQL})[status] DESC
), facts AS (
    SELECT * FROM unnest($8::bigint[], $9::timestamptz[], $10::boolean[], $11::text[],
                         $12::integer[], $13::timestamptz[], $14::bigint[])
        AS f(dossier_id, closed, accepting, supplements, supplement_count,
             supplement_requested_at, supplement_seconds)
), plan AS (
    SELECT f.*, l.status AS new_status, l.at AS new_at,
           l.dossier_id IS NOT NULL AND (l.at, ({STATUS_RANK_SQL})[l.status])
               > (d.source_updated_at, ({STATUS_RANK_SQL})[d.status]) AS newer
    FROM facts f JOIN dossiers d ON d.id = f.dossier_id
    LEFT JOIN latest l ON l.dossier_id = f.dossier_id
), moved AS (
    UPDATE dossiers d SET
        status = CASE WHEN p.newer THEN p.new_status ELSE d.status END,
        source_updated_at = CASE WHEN p.newer THEN p.new_at ELSE d.source_updated_at END,
        finished_at = CASE WHEN p.newer AND p.new_status IN (9, 10)
                           THEN coalesce(d.finished_at, p.new_at) ELSE d.finished_at END,
        returned_at = CASE WHEN p.newer AND p.new_status = 10
                           THEN coalesce(d.returned_at, p.new_at) ELSE d.returned_at END,
        closed_at = LEAST(d.closed_at, p.closed),
        accepted = d.accepted OR p.accepting,
        supplements = coalesce(p.supplements::jsonb, d.supplements),
        supplement_count = coalesce(p.supplement_count, d.supplement_count),
        supplement_requested_at = CASE WHEN p.supplements IS NULL
            THEN d.supplement_requested_at ELSE p.supplement_requested_at END,
        supplement_seconds = coalesce(p.supplement_seconds, d.supplement_seconds),
        change_seq = nextval('record_change_seq'), updated_at = now()
    FROM plan p
    WHERE d.id = p.dossier_id
      AND (p.newer OR p.closed < coalesce(d.closed_at, 'infinity')
           OR (p.accepting AND NOT d.accepted) OR p.supplements IS NOT NULL)
    RETURNING 1
)
SELECT (SELECT count(*) FROM hist) AS history, (SELECT count(*) FROM moved) AS moved
"""


async def store_steps(
    session: AsyncSession,
    source: str,
    steps: list[ProgressStep],
    rejected: list[Rejection],
    scope: str | None = None,
) -> IngestResult:
    """Append progress steps to their dossiers' history and move each dossier's status to
    its newest step (never backwards). A step for an unknown dossier is rejected."""
    conn = await raw_connection(session)
    result = IngestResult("dossiers")
    allowed = await scope_units(conn, scope)
    ids = {
        r["source_id"]: r["id"]
        for r in await conn.fetch(
            "SELECT id, source_id, unit_code FROM dossiers "
            "WHERE source = $1 AND source_id = ANY($2::text[])",
            source,
            sorted({s.source_id for s in steps}),
        )
        if allowed is None or r["unit_code"] in allowed
    }
    known = []
    for step in steps:
        if step.source_id not in ids:
            rejected.append(
                Rejection(
                    step.index,
                    step.source_id,
                    [
                        f"MaHoSo: no dossier {step.source_id!r} from source {source!r} "
                        "in this collector's scope (send the dossier first, then replay "
                        "this step)"
                    ],
                    step.raw,
                    "dossier_progress",
                )
            )
        else:
            known.append(step)
    result.accepted = len(known)
    if not known:
        return result
    await conn.execute(LOCK_SQL)
    current = {
        r["id"]: r["supplements"]
        for r in await conn.fetch(
            "SELECT id, supplements::text FROM dossiers WHERE id = ANY($1::bigint[])",
            sorted({ids[s.source_id] for s in known}),
        )
    }
    facts = step_facts(known, ids, current)
    counts = await conn.fetchrow(
        _APPLY_STEPS,
        [ids[s.source_id] for s in known],
        [s.status for s in known],
        [s.at for s in known],
        [s.actor for s in known],
        [s.department for s in known],
        [s.note for s in known],
        [s.raw for s in known],
        *facts,
    )
    assert counts is not None
    # A step counts as a change when it adds history; the dossier row itself moves at most
    # once per batch (to its newest step).
    result.updated = counts["history"]
    result.unchanged = result.accepted - result.updated
    if counts["moved"]:
        await notify(conn, "dossiers")
    return result
