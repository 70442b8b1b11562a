"""The ingest pipeline: records → PostgreSQL, exactly once, set-based.

One batch is one transaction:
1. resolve every record's unit reference (GSO code, or organ id through `organs`) in one
   query; unresolvable records become rejections;
2. keep, per key, only the newest version within the batch (the same id twice would make
   `ON CONFLICT DO UPDATE` touch a row twice);
3. COPY the survivors into a temporary staging table (`copy_records_to_table`);
4. take the ingest advisory lock (architecture §1: change_seq order = commit order) and run
   one `INSERT … SELECT … ON CONFLICT … DO UPDATE … WHERE <newer> AND <changed>`; every
   inserted or really changed row gets `change_seq = nextval('record_change_seq')`, an
   unchanged or older re-sent record gets nothing; status changes are appended to history
   in the same statement;
5. `pg_notify('ioc_ingest', feed)` when something changed (sent at commit).
The caller owns the transaction (`async with db.session()`), so a pull collector commits its
cursor together with the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.collectors.dossier_facts import (
    FACT_COLUMNS,
    FACT_DDL,
    SUPPLEMENT_COLUMNS,
    SUPPLEMENT_DDL,
    choose_units,
    fact_values,
    infer_finished,
    step_facts,
    unit_candidates,
)
from ioc.collectors.dossiers import STATUS_RANK, STATUS_RANK_SQL
from ioc.collectors.records import (
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

R = TypeVar("R", DossierRecord, ReportRecord, ProcedureRecord)


async def raw_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction."""
    return await driver_connection(session)


async def lock_and_notify(conn: asyncpg.Connection, feed: str) -> None:
    """Take the ingest lock and queue the commit-time notification for `feed`."""
    await conn.execute(LOCK_SQL)
    await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, feed)


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
            fmt = rec.format if isinstance(rec, ReportRecord) else _format_of(rec)
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


def _record_id(rec: DossierRecord | ReportRecord | ProcedureRecord) -> str:
    return rec.code if isinstance(rec, ProcedureRecord) else rec.source_id


def _format_of(rec: object) -> str:
    return "dossier" if isinstance(rec, DossierRecord) else "procedure"


def newest_per_key(records: Sequence[R], key: Any, version: Any) -> list[R]:
    """One record per key: the highest version, the later one in the batch on a tie."""
    best: dict[Any, R] = {}
    for rec in records:
        k = key(rec)
        current = best.get(k)
        if current is None or version(rec) >= version(current):
            best[k] = rec
    return list(best.values())


async def _stage(
    conn: asyncpg.Connection, table: str, ddl: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    # One temp table per connection, reused across batches (no catalog churn per batch);
    # emptied first because a transaction may ingest more than one batch (replay). JIT
    # compilation costs more than it saves on statements of this size. One round trip.
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {table} ({ddl}) ON COMMIT DELETE ROWS; "
        f"DELETE FROM {table}; SET LOCAL jit = off"
    )
    # Binary COPY (asyncpg encodes the tuples in C). No ANALYZE: the upsert reads the
    # staging table once, start to end, and joins nothing to it (the old rows it needs are
    # looked up by primary key), so no plan depends on the staging table's statistics.
    await conn.copy_records_to_table(table, records=rows, columns=columns)


# --- dossiers ---------------------------------------------------------------------------

_DOSSIER_COLUMNS = [
    "source", "source_id", "procedure_code", "procedure_name", "sector_code", "sector_name",
    "channel", "unit_code", "unit_ref", "received_at", "due_at", "finished_at", "returned_at",
    "status", "service_level", "digitized", "paid_online", "applicant_name", "applicant_phone",
    "applicant_email", "applicant_address", "source_updated_at",
    *FACT_COLUMNS, *SUPPLEMENT_COLUMNS, "raw",
]  # fmt: skip
_DOSSIER_DDL = f"""
    source text, source_id text, procedure_code text, procedure_name text, sector_code text,
    sector_name text, channel smallint, unit_code text, unit_ref text, received_at timestamptz,
    due_at timestamptz, finished_at timestamptz, returned_at timestamptz, status smallint,
    service_level smallint, digitized boolean, paid_online boolean, applicant_name text,
    applicant_phone text, applicant_email text, applicant_address text,
    source_updated_at timestamptz, {FACT_DDL}, {SUPPLEMENT_DDL}, raw text
"""
# Columns with a merge rule of their own (docs/collectors.md): the first closing is kept, a
# dossier once accepted stays so, and a sync whose supplement list is empty keeps what the
# progress steps recorded.
_MERGED = ("closed_at", "accepted", *SUPPLEMENT_COLUMNS)
_DATA_COLUMNS = [c for c in _DOSSIER_COLUMNS if c not in ("source", "source_id", "raw", *_MERGED)]
_MERGE_SQL = ", ".join(
    [
        "closed_at = LEAST(d.closed_at, EXCLUDED.closed_at)",
        "accepted = d.accepted OR EXCLUDED.status NOT IN (1, 7)",
        *(
            f"{c} = CASE WHEN EXCLUDED.supplement_count > 0 THEN EXCLUDED.{c} ELSE d.{c} END"
            for c in SUPPLEMENT_COLUMNS
        ),
    ]
)
# Inserted or updated: `xmax = 0` only on a freshly inserted row version. The status a row
# had before this statement: all parts of one statement read the same snapshot, in which
# the rows `up` inserts or updates are not yet visible (PostgreSQL docs, "Data-Modifying
# Statements in WITH"), so `hist` reads the old version by primary key, for updated rows
# only. (The ingest lock is taken before the statement starts, so its snapshot already
# holds every earlier batch.)
_UPSERT_DOSSIERS = f"""
WITH up AS (
    INSERT INTO dossiers AS d ({", ".join(_DOSSIER_COLUMNS)}, change_seq)
    SELECT {", ".join(_DOSSIER_COLUMNS[:-1])}, raw::jsonb, nextval('record_change_seq')
    FROM ioc_stage_dossiers
    ON CONFLICT (source, source_id) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _DATA_COLUMNS)}, {_MERGE_SQL},
        raw = EXCLUDED.raw, change_seq = nextval('record_change_seq'), updated_at = now()
    WHERE (EXCLUDED.source_updated_at, ({STATUS_RANK_SQL})[EXCLUDED.status])
            >= (d.source_updated_at, ({STATUS_RANK_SQL})[d.status])
      AND (d.raw IS DISTINCT FROM EXCLUDED.raw OR d.status IS DISTINCT FROM EXCLUDED.status
           OR d.unit_code IS DISTINCT FROM EXCLUDED.unit_code)
    RETURNING d.id, d.status, d.source_updated_at, d.xmax = 0 AS inserted
), hist AS (
    INSERT INTO dossier_history (dossier_id, status, at, origin)
    SELECT up.id, up.status, up.source_updated_at, 'sync' FROM up
    WHERE up.inserted
       OR up.status IS DISTINCT FROM (SELECT old.status FROM dossiers old WHERE old.id = up.id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM hist) AS history
FROM up
"""


def _dossier_version(rec: DossierRecord) -> tuple[Any, int]:
    return rec.source_updated_at, STATUS_RANK[rec.status - 1]


async def store_dossiers(
    session: AsyncSession,
    source: str,
    records: list[DossierRecord],
    rejected: list[Rejection],
    scope: str | None = None,
) -> IngestResult:
    """Upsert parsed dossiers; unknown units are added to `rejected`."""
    conn = await raw_connection(session)
    result = IngestResult("dossiers")
    records = choose_units(records, await resolve_units(conn, unit_candidates(records)), rejected)
    valid = await placed_records(conn, records, rejected, "MaDonVi", scope)
    result.accepted = len(valid)
    seen_at = datetime.now(UTC)
    await infer_finished(conn, source, valid, seen_at)
    rows = [
        (
            source,
            r.source_id,
            r.procedure_code,
            r.procedure_name,
            r.sector_code,
            r.sector_name,
            r.channel,
            r.unit_code,
            r.unit_ref,
            r.received_at,
            r.due_at,
            r.finished_at,
            r.returned_at,
            r.status,
            r.service_level,
            r.digitized,
            r.paid_online,
            r.applicant_name,
            r.applicant_phone,
            r.applicant_email,
            r.applicant_address,
            r.source_updated_at,
            *fact_values(r, seen_at),
            r.raw,
        )
        for r in newest_per_key(valid, lambda r: r.source_id, _dossier_version)
    ]
    if rows:
        await _stage(conn, "ioc_stage_dossiers", _DOSSIER_DDL, _DOSSIER_COLUMNS, rows)
        await conn.execute(LOCK_SQL)
        counts = await conn.fetchrow(_UPSERT_DOSSIERS)
        assert counts is not None
        result.inserted, result.updated = counts["inserted"], counts["updated"]
    result.unchanged = result.accepted - result.inserted - result.updated
    if result.inserted or result.updated:
        await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, "dossiers")
    return result


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
        await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, "dossiers")
    return result


# --- reports ----------------------------------------------------------------------------

_REPORT_COLUMNS = [
    "source", "source_id", "received_at", "channel", "category", "unit_code", "unit_ref",
    "status", "assigned_to", "due_at", "first_response_at", "resolved_at", "title", "content",
    "citizen_name", "citizen_phone", "lat", "lon", "source_updated_at", "rating",
    "rejected_at", "raw",
]  # fmt: skip
_REPORT_DDL = """
    source text, source_id text, received_at timestamptz, channel text, category text,
    unit_code text, unit_ref text, status text, assigned_to text, due_at timestamptz,
    first_response_at timestamptz, resolved_at timestamptz, title text, content text,
    citizen_name text, citizen_phone text, lat float8, lon float8,
    source_updated_at timestamptz, rating text, rejected_at timestamptz, raw text
"""
_REPORT_DATA = [c for c in _REPORT_COLUMNS if c not in ("source", "source_id", "raw")]
# As `_UPSERT_DOSSIERS`: inserted = `xmax = 0`, the old status read from the snapshot.
_UPSERT_REPORTS = f"""
WITH up AS (
    INSERT INTO reports AS r ({", ".join(_REPORT_COLUMNS)}, change_seq)
    SELECT {", ".join(_REPORT_COLUMNS[:-1])}, raw::jsonb, nextval('record_change_seq')
    FROM ioc_stage_reports
    ON CONFLICT (source, source_id) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _REPORT_DATA)},
        raw = EXCLUDED.raw, change_seq = nextval('record_change_seq'), updated_at = now()
    WHERE (EXCLUDED.source_updated_at, {REPORT_RANK_SQL.format(col="EXCLUDED.status")})
            >= (r.source_updated_at, {REPORT_RANK_SQL.format(col="r.status")})
      AND (r.raw IS DISTINCT FROM EXCLUDED.raw OR r.unit_code IS DISTINCT FROM EXCLUDED.unit_code)
    RETURNING r.id, r.status, r.source_updated_at, r.xmax = 0 AS inserted
), hist AS (
    INSERT INTO report_history (report_id, status, at)
    SELECT up.id, up.status, up.source_updated_at FROM up
    WHERE up.inserted
       OR up.status IS DISTINCT FROM (SELECT old.status FROM reports old WHERE old.id = up.id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated,
       (SELECT count(*) FROM hist) AS history
FROM up
"""


def _report_version(rec: ReportRecord) -> tuple[Any, int]:
    return rec.source_updated_at, REPORT_RANK[rec.status]


async def store_reports(
    session: AsyncSession,
    source: str,
    records: list[ReportRecord],
    rejected: list[Rejection],
    scope: str | None = None,
) -> IngestResult:
    """Upsert parsed reports; unknown units are added to `rejected`."""
    conn = await raw_connection(session)
    result = IngestResult("reports")
    valid = await placed_records(conn, records, rejected, "unit", scope)
    result.accepted = len(valid)
    rows = [
        (
            source,
            r.source_id,
            r.received_at,
            r.channel,
            r.category,
            r.unit_code,
            r.unit_ref,
            r.status,
            r.assigned_to,
            r.due_at,
            r.first_response_at,
            r.resolved_at,
            r.title,
            r.content,
            r.citizen_name,
            r.citizen_phone,
            r.lat,
            r.lon,
            r.source_updated_at,
            r.rating,
            r.rejected_at,
            r.raw,
        )
        for r in newest_per_key(valid, lambda r: r.source_id, _report_version)
    ]
    if rows:
        await _stage(conn, "ioc_stage_reports", _REPORT_DDL, _REPORT_COLUMNS, rows)
        await conn.execute(LOCK_SQL)
        counts = await conn.fetchrow(_UPSERT_REPORTS)
        assert counts is not None
        result.inserted, result.updated = counts["inserted"], counts["updated"]
    result.unchanged = result.accepted - result.inserted - result.updated
    if result.inserted or result.updated:
        await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, "reports")
    return result


# --- procedures -------------------------------------------------------------------------

_PROCEDURE_COLUMNS = [
    "source", "code", "unit_code", "name", "sector_code", "service_level", "online",
    "legal_days", "raw",
]  # fmt: skip
_PROCEDURE_DDL = """
    source text, code text, unit_code text, name text, sector_code text,
    service_level smallint, online boolean, legal_days numeric, raw text
"""
_UPSERT_PROCEDURES = """
WITH up AS (
    INSERT INTO procedures AS p (source, code, unit_code, name, sector_code, service_level,
                                 online, legal_days, raw, change_seq)
    SELECT source, code, unit_code, name, sector_code, service_level, online, legal_days,
           raw::jsonb, nextval('record_change_seq')
    FROM ioc_stage_procedures
    ON CONFLICT (source, code, unit_code) DO UPDATE SET
        name = EXCLUDED.name, sector_code = EXCLUDED.sector_code,
        service_level = EXCLUDED.service_level, online = EXCLUDED.online,
        legal_days = EXCLUDED.legal_days, raw = EXCLUDED.raw,
        change_seq = nextval('record_change_seq'), updated_at = now()
    WHERE p.raw IS DISTINCT FROM EXCLUDED.raw
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
FROM up
"""


def _procedure_row(source: str, r: ProcedureRecord) -> tuple[Any, ...]:
    return (
        source, r.code, r.unit_code, r.name, r.sector_code, r.service_level, r.online,
        r.legal_days, r.raw,
    )  # fmt: skip


async def store_procedures(
    session: AsyncSession,
    source: str,
    records: list[ProcedureRecord],
    rejected: list[Rejection],
    scope: str | None = None,
) -> IngestResult:
    """Upsert catalogue entries keyed by (source, code, unit). A catalogue has no version
    of its own: the last one received wins."""
    conn = await raw_connection(session)
    result = IngestResult("procedures")
    valid = await placed_records(conn, records, rejected, "MaDonVi", scope)
    result.accepted = len(valid)
    latest = newest_per_key(valid, lambda r: (r.code, r.unit_code), lambda r: r.index)
    rows = [_procedure_row(source, r) for r in latest]
    if rows:
        await _stage(conn, "ioc_stage_procedures", _PROCEDURE_DDL, _PROCEDURE_COLUMNS, rows)
        await conn.execute(LOCK_SQL)
        counts = await conn.fetchrow(_UPSERT_PROCEDURES)
        assert counts is not None
        result.inserted, result.updated = counts["inserted"], counts["updated"]
    result.unchanged = result.accepted - result.inserted - result.updated
    if result.inserted or result.updated:
        await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, "procedures")
    return result
