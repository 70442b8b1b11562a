"""Maintaining the KPI aggregates from source records, set-based, in the caller's transaction.

For the records of a round (a `Source`: the engine's journal of what it derived, or a rebuild's
change_seq range (lo, hi]) the fold:
1. takes each record's new *contribution* (`contributions.py`: local days, flags, open due
   time), derived from the raw row, or as the engine journaled it;
2. reads its old contribution from the projection tables (`kpi_*_proj`);
3. writes signed facts (-old, +new), expanded to every ancestor (`ancestors_join_sql`), into
   temporary tables, and adds them to the counters (`kpi_counts` by `COUNTERS`, `kpi_open`,
   service usage: `usage.py`);
4. replaces the projection rows.
A rebuild is the same code with empty projections and (lo, hi] = (0, max]: one path, so the
incremental result and the rebuild agree by construction as well as by test. The engine folds
its journal after it has emitted the round's events (docs/kpis.md, "How it works").

Records are never deleted by ingest (a withdrawn dossier is a status change), so deletes are
not handled here; `ioc kpis rebuild` repairs after a manual purge.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis.contributions import (
    CHANGED_PROCEDURES,
    COUNT_COLUMNS,
    DOCUMENTS,
    DOSSIERS,
    PROJECTED_FEEDS,
    SOURCE_TABLES,
    ProjectedFeed,
    counters_by_day,
)
from ioc.kpis.usage import fold_service_days, fold_services
from ioc.units import ancestors_join_sql

_COLS = ", ".join(COUNT_COLUMNS)


@dataclass(frozen=True)
class Source:
    """Where a round's new contributions come from: the raw rows with lo < change_seq <= hi
    (a rebuild), or the engine's journal (rows it derived and folded into memory already)."""

    lo: int = 0
    hi: int = 0
    journal: int | None = None


async def _exec(session: AsyncSession, sql: str, **params: object) -> None:
    await session.execute(text(sql), params)


async def _facts_tables(session: AsyncSession, feed: ProjectedFeed, source: Source) -> None:
    """`<temp>_new`: the records' new contributions; `<temp>_old`: their projections."""
    new = f"{feed.temp}_new"
    if source.journal is None:
        sql = f"CREATE TEMP TABLE {new} ON COMMIT DROP AS {feed.contribution}"
        await _exec(session, sql, lo=source.lo, hi=source.hi)
    else:
        await _exec(
            session,
            f"""
            CREATE TEMP TABLE {new} ON COMMIT DROP AS
            SELECT x.* FROM kpi_journal j,
                jsonb_to_recordset(coalesce(j.{feed.feed}, '[]')::jsonb) AS x({feed.columns})
            WHERE j.id = :id
            """,
            id=source.journal,
        )
    await _exec(
        session,
        f"""
        CREATE TEMP TABLE {feed.temp}_old ON COMMIT DROP AS
        SELECT p.* FROM {feed.projection} p JOIN {new} n USING ({feed.key})
        """,
    )


def _sums(feed: ProjectedFeed, day: str) -> str:
    """The select list of a `kf` row in `COUNT_COLUMNS` order: the signed sum of each of the
    feed's counters that count on `day` (1 or its flag), 0 for every other counter."""
    terms = {
        c.name: "s" if c.flag is None else f"s * {c.flag}::int"
        for c in counters_by_day(feed.feed)[day]
    }
    return ", ".join(f"sum({terms[c]})" if c in terms else "0" for c in COUNT_COLUMNS)


async def _fold_counts(session: AsyncSession, feed: ProjectedFeed) -> None:
    """Add a feed's signed counters to `kf` at every ancestor, per (unit, day) of each of its
    counting days. A document counts once at every distinct ancestor of its units."""
    if feed is DOCUMENTS:
        per_day = " UNION ALL ".join(
            f"""
            SELECT a.ancestor_code, x.{day}, {_sums(feed, day)}
            FROM {feed.signed} x
            CROSS JOIN LATERAL (
                SELECT DISTINCT c.ancestor_code FROM unnest(x.units) AS u(code)
                {ancestors_join_sql("u.code", "c")}) a
            WHERE x.{day} IS NOT NULL
            GROUP BY 1, 2
            """
            for day in counters_by_day(feed.feed)
        )
        await _exec(session, f"INSERT INTO kf (unit_code, day, {_COLS}) {per_day}")
        return
    # summed per (filing unit, day) before fanning out to ancestors: a rebuild of millions of
    # records fans out thousands of rows, not millions
    per_day = " UNION ALL ".join(
        f"SELECT unit_code, {day}, {_sums(feed, day)} FROM {feed.signed} x "
        f"WHERE {day} IS NOT NULL GROUP BY 1, 2"
        for day in counters_by_day(feed.feed)
    )
    await _exec(
        session,
        f"""
        INSERT INTO kf (unit_code, day, {_COLS})
        SELECT c.ancestor_code, f.day, {", ".join("f." + c for c in COUNT_COLUMNS)}
        FROM ({per_day}) AS f(unit_code, day, {_COLS})
        {ancestors_join_sql("f.unit_code", "c")}
        """,
    )


async def _fold_open_dues(session: AsyncSession, feed: ProjectedFeed) -> None:
    """Move the open-with-a-due-date set of `feed` by this round's facts, at every ancestor
    of the record's unit (a document: of each unit where it is open, once per ancestor)."""
    if feed is DOCUMENTS:
        sql = f"""
            INSERT INTO ko (unit_code, feed, due_at, n)
            SELECT a.ancestor_code, :feed, x.due_at, x.s
            FROM {feed.signed} x
            CROSS JOIN LATERAL (
                SELECT DISTINCT c.ancestor_code FROM unnest(x.open_units) AS u(code)
                {ancestors_join_sql("u.code", "c")}) a
            WHERE x.due_at IS NOT NULL
        """
        await _exec(session, sql, feed=feed.feed)
        return
    for open_feed, due in feed.opens:
        sql = f"""
            INSERT INTO ko (unit_code, feed, due_at, n)
            SELECT c.ancestor_code, :feed, x.due, x.s
            FROM (SELECT s, unit_code, {due} AS due FROM {feed.signed} y) x
            {ancestors_join_sql("x.unit_code", "c")}
            WHERE x.due IS NOT NULL
        """
        await _exec(session, sql, feed=open_feed)


async def _store_projections(session: AsyncSession, feed: ProjectedFeed) -> int:
    """Replace the records' projection rows by their new contributions; drop the round's
    tables; return how many records."""
    names = feed.column_names
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c != feed.key)
    await _exec(
        session,
        f"""
        INSERT INTO {feed.projection} AS p SELECT * FROM {feed.temp}_new
        ON CONFLICT ({feed.key}) DO UPDATE SET {sets}
        """,
    )
    n = (await session.execute(text(f"SELECT count(*) FROM {feed.temp}_new"))).scalar_one()
    await _exec(session, f"DROP TABLE {feed.temp}_new, {feed.temp}_old")
    return int(n)


async def _fold_feed(session: AsyncSession, feed: ProjectedFeed, source: Source) -> int:
    await _facts_tables(session, feed, source)
    await _fold_counts(session, feed)
    await _fold_open_dues(session, feed)
    if feed is DOSSIERS:
        await fold_service_days(session, feed)
    return await _store_projections(session, feed)


async def _prepare(session: AsyncSession) -> None:
    """The round's facts, signed and already at ancestor level: counters (`kf`), open due
    moments (`ko`), services touched (`ks`)."""
    await _exec(
        session,
        f"""
        CREATE TEMP TABLE IF NOT EXISTS kf (
            unit_code text, day date, {", ".join(c + " bigint" for c in COUNT_COLUMNS)}
        ) ON COMMIT DROP
        """,
    )
    await _exec(
        session,
        "CREATE TEMP TABLE IF NOT EXISTS ko (unit_code text, feed text, due_at timestamptz, "
        "n bigint) ON COMMIT DROP",
    )
    await _exec(
        session,
        "CREATE TEMP TABLE IF NOT EXISTS ks (unit_code text, procedure_code text) ON COMMIT DROP",
    )
    await _exec(session, "TRUNCATE kf, ko, ks")


async def _procedures(session: AsyncSession, source: Source) -> int:
    """The services whose catalogue rows changed, into `ks`; how many rows."""
    if source.journal is None:
        sql = f"INSERT INTO ks (unit_code, procedure_code) {CHANGED_PROCEDURES}"
        params: dict[str, object] = {"lo": source.lo, "hi": source.hi}
    else:
        sql = """
            INSERT INTO ks (unit_code, procedure_code)
            SELECT x->>0, x->>1 FROM kpi_journal j,
                jsonb_array_elements(coalesce(j.procedures, '[]')::jsonb) AS x
            WHERE j.id = :id
        """
        params = {"id": source.journal}
    result = await session.execute(text(sql), params)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _flush_facts(session: AsyncSession) -> None:
    """Add `kf` to the day and month counters and `ko` to the open sets; drop rows that net
    to zero."""
    sums = ", ".join(f"sum({c})" for c in COUNT_COLUMNS)
    nonzero = " OR ".join(f"sum({c}) <> 0" for c in COUNT_COLUMNS)
    adds = ", ".join(f"{c} = k.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS)
    zero = " AND ".join(f"{c} = 0" for c in COUNT_COLUMNS)
    await _exec(
        session,
        f"""
        INSERT INTO kpi_counts AS k (unit_code, grain, period, {_COLS})
        SELECT unit_code, g.grain,
               CASE WHEN g.grain = 'd' THEN day ELSE date_trunc('month', day)::date END,
               {sums}
        FROM kf CROSS JOIN (VALUES ('d'::"char"), ('m'::"char")) AS g(grain)
        GROUP BY 1, 2, 3 HAVING {nonzero}
        ON CONFLICT (unit_code, grain, period) DO UPDATE SET {adds}
        """,
    )
    await _exec(session, f"DELETE FROM kpi_counts WHERE {zero}")
    await _exec(
        session,
        """
        INSERT INTO kpi_open AS o (unit_code, feed, due_at, n)
        SELECT unit_code, feed, due_at, sum(n) FROM ko
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0
        ON CONFLICT (unit_code, feed, due_at) DO UPDATE SET n = o.n + EXCLUDED.n
        """,
    )
    await _exec(
        session,
        """
        DELETE FROM kpi_open o USING (SELECT DISTINCT unit_code, feed, due_at FROM ko) t
        WHERE o.unit_code = t.unit_code AND o.feed = t.feed AND o.due_at = t.due_at AND o.n = 0
        """,
    )


async def _feeds_with_records(session: AsyncSession, source: Source) -> set[str]:
    """Which source tables have records in the source: a round touching one feed skips the
    others."""
    if source.journal is None:
        checks = ", ".join(
            f"EXISTS (SELECT 1 FROM {t} WHERE change_seq > :lo AND change_seq <= :hi)"
            for t in SOURCE_TABLES
        )
        params: dict[str, object] = {"lo": source.lo, "hi": source.hi}
    else:
        checks = ", ".join(f"{t} IS NOT NULL" for t in SOURCE_TABLES)
        checks = f"{checks} FROM kpi_journal WHERE id = :id"
        params = {"id": source.journal}
    row = (await session.execute(text(f"SELECT {checks}"), params)).one()
    return {t for t, present in zip(SOURCE_TABLES, row, strict=True) if present}


async def apply_changes(session: AsyncSession, source: Source) -> int:
    """Fold the records of `source` into the aggregates (caller's transaction); return how
    many records."""
    feeds = await _feeds_with_records(session, source)
    if not feeds:
        return 0
    await _prepare(session)
    records = 0
    for feed in PROJECTED_FEEDS:
        if feed.feed in feeds:
            records += await _fold_feed(session, feed, source)
    if "procedures" in feeds:
        records += await _procedures(session, source)
    if feeds & {"dossiers", "procedures"}:
        await fold_services(session)
    await _flush_facts(session)
    return records


async def clear(session: AsyncSession) -> None:
    """Empty every aggregate and projection (the first step of a rebuild)."""
    await _exec(
        session,
        "TRUNCATE kpi_dossier_proj, kpi_report_proj, kpi_document_proj, kpi_agency_report_proj, "
        "kpi_counts, kpi_open, kpi_service_day, kpi_service, kpi_service_usage, kpi_journal",
    )
