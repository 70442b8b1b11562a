"""Maintaining the KPI aggregates from source records, set-based, in the caller's transaction.

For the records of a round (a `Source`: the engine's journal of what it derived, or a rebuild's
change_seq range (lo, hi]) the fold:
1. takes each record's new *contribution* (local days, flags, open due time), derived from the
   raw row by the `*_CONTRIBUTION` expressions;
2. reads its old contribution from the projection tables (`kpi_*_proj`);
3. writes signed facts (-old, +new), expanded to every ancestor through `unit_closure`, into
   temporary tables, and adds them to the counters (`kpi_counts`, `kpi_open`, service usage);
4. replaces the projection rows.
A rebuild is the same code with empty projections and (lo, hi] = (0, max]: one path, so the
incremental result and the rebuild agree by construction as well as by test. The engine folds
its journal after it has emitted the round's events (docs/kpis.md, "How it works").

Records are never deleted by ingest (a withdrawn dossier is a status change), so deletes are
not handled here; `ioc kpis rebuild` repairs after a manual purge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.localtime import LOCAL_TZ_NAME as TZ

# Width of the response-time histogram buckets (seconds) behind the exact median: wider
# buckets mean fewer histogram rows to count through, more reports to sort in the one bucket.
RESP_BUCKET_SECONDS = 3600

COUNT_COLUMNS = (
    "d_received",
    "d_online",
    "d_digitized",
    "d_paid",
    "d_finished",
    "d_ontime",
    "r_received",
    "r_resolved",
    "r_ontime",
    "doc_sent",
    "doc_electronic",
)
_COLS = ", ".join(COUNT_COLUMNS)
_FCOLS = ", ".join("f." + c for c in COUNT_COLUMNS)


# Each record's contribution, derived from its raw row: one expression per feed, used by a
# rebuild (into temporary tables) and by the engine's round (rows read back, folded into its
# memory and journaled for the fold), so the two cannot disagree.
DOSSIER_CONTRIBUTION = f"""
SELECT id AS dossier_id, unit_code, procedure_code,
       (received_at AT TIME ZONE '{TZ}')::date AS recv_day,
       channel = 2 AS online,
       digitized,
       channel = 2 AND paid_online AS paid,
       CASE WHEN finished_at IS NOT NULL AND status NOT IN (3, 7, 8)
            THEN (finished_at AT TIME ZONE '{TZ}')::date END AS fin_day,
       coalesce(due_at IS NULL OR finished_at <= due_at, false) AS ontime,
       CASE WHEN finished_at IS NULL AND status NOT IN (3, 7, 8) THEN due_at END
           AS open_due
FROM dossiers WHERE change_seq > :lo AND change_seq <= :hi
"""
REPORT_CONTRIBUTION = f"""
SELECT id AS report_id, unit_code,
       (received_at AT TIME ZONE '{TZ}')::date AS recv_day,
       CASE WHEN resolved_at IS NOT NULL AND status <> 'rejected'
            THEN (resolved_at AT TIME ZONE '{TZ}')::date END AS resolved_day,
       coalesce(due_at IS NULL OR resolved_at <= due_at, false) AS ontime,
       extract(epoch FROM first_response_at - received_at)::double precision
           AS resp_seconds,
       floor(extract(epoch FROM first_response_at - received_at) / {RESP_BUCKET_SECONDS})
           ::integer AS resp_bucket,
       CASE WHEN resolved_at IS NULL AND status <> 'rejected' THEN due_at END
           AS open_due
FROM reports WHERE change_seq > :lo AND change_seq <= :hi
"""
DOCUMENT_CONTRIBUTION = f"""
SELECT d.id AS document_pk,
       coalesce(ARRAY(
           SELECT DISTINCT u FROM (
               SELECT d.unit_code AS u
               UNION ALL SELECT r.unit_code FROM document_recipients r
               WHERE r.document_pk = d.id) x
           WHERE u IS NOT NULL ORDER BY u), '{{}}') AS units,
       CASE WHEN d.completed_at IS NOT NULL THEN '{{}}'::text[]
            WHEN EXISTS (SELECT 1 FROM document_recipients r
                         WHERE r.document_pk = d.id AND r.unit_code IS NOT NULL)
            THEN ARRAY(SELECT DISTINCT r.unit_code FROM document_recipients r
                       WHERE r.document_pk = d.id AND r.unit_code IS NOT NULL
                         AND r.completed_at IS NULL ORDER BY 1)
            WHEN d.unit_code IS NOT NULL THEN ARRAY[d.unit_code]
            ELSE '{{}}'::text[] END AS open_units,
       (d.sent_at AT TIME ZONE '{TZ}')::date AS sent_day,
       d.electronic,
       ((d.due_on + 1)::timestamp AT TIME ZONE '{TZ}') AS due_at
FROM documents d WHERE d.change_seq > :lo AND d.change_seq <= :hi
"""
CHANGED_PROCEDURES = """
SELECT DISTINCT unit_code, code FROM procedures WHERE change_seq > :lo AND change_seq <= :hi
"""
# The projection tables' columns, in the order of the contributions above (and of the
# journal's JSON rows).
DOSSIER_COLUMNS = (
    "dossier_id bigint, unit_code text, procedure_code text, recv_day date, online boolean, "
    "digitized boolean, paid boolean, fin_day date, ontime boolean, open_due timestamptz"
)
REPORT_COLUMNS = (
    "report_id bigint, unit_code text, recv_day date, resolved_day date, ontime boolean, "
    "resp_seconds double precision, resp_bucket integer, open_due timestamptz"
)
DOCUMENT_COLUMNS = (
    "document_pk bigint, units text[], open_units text[], sent_day date, electronic boolean, "
    "due_at timestamptz"
)


@dataclass(frozen=True)
class Source:
    """Where a round's new contributions come from: the raw rows with lo < change_seq <= hi
    (a rebuild), or the engine's journal (rows it derived and folded into memory already)."""

    lo: int = 0
    hi: int = 0
    journal: int | None = None


_JOURNAL = {
    "kd_new": ("dossiers", DOSSIER_COLUMNS, DOSSIER_CONTRIBUTION),
    "kr_new": ("reports", REPORT_COLUMNS, REPORT_CONTRIBUTION),
    "kdoc_new": ("documents", DOCUMENT_COLUMNS, DOCUMENT_CONTRIBUTION),
}


async def _new_table(session: AsyncSession, table: str, source: Source) -> None:
    feed, columns, derive = _JOURNAL[table]
    if source.journal is None:
        await _exec(
            session,
            f"CREATE TEMP TABLE {table} ON COMMIT DROP AS {derive}",
            lo=source.lo,
            hi=source.hi,
        )
    else:
        await _exec(
            session,
            f"""
            CREATE TEMP TABLE {table} ON COMMIT DROP AS
            SELECT x.* FROM kpi_journal j,
                jsonb_to_recordset(coalesce(j.{feed}, '[]')::jsonb) AS x({columns})
            WHERE j.id = :id
            """,
            id=source.journal,
        )


@dataclass
class Applied:
    """What one round changed: how many records, and which units' figures may have moved."""

    records: int = 0
    units: set[str] = field(default_factory=set)
    median_units: set[str] = field(default_factory=set)
    # Whether this round's signed open facts are in the temporary table `ko` (until commit).
    facts: bool = False


async def _exec(session: AsyncSession, sql: str, **params: object) -> None:
    await session.execute(text(sql), params)


def _signed(facts: str) -> str:
    """This round's facts of a feed as one relation: new contributions counted in (s = 1),
    old ones counted out (s = -1)."""
    return f"(SELECT 1 AS s, * FROM {facts}_new UNION ALL SELECT -1, * FROM {facts}_old)"


def _sums(terms: dict[str, str]) -> str:
    """The select list of a `kf` row in `COUNT_COLUMNS` order: the sum of its term for each
    counter in `terms`, 0 for every other counter."""
    return ", ".join(f"sum({terms[c]})" if c in terms else "0" for c in COUNT_COLUMNS)


async def _fold_counts(
    session: AsyncSession,
    facts: str,
    received: dict[str, str],
    finished_day: str,
    finished: dict[str, str],
) -> None:
    """Add a feed's signed counters to `kf` at every ancestor: those of `received` per
    (filing unit, recv_day), those of `finished` per (filing unit, `finished_day`) where set."""
    signed = _signed(facts)
    await _exec(
        session,
        f"""
        INSERT INTO kf (unit_code, day, {_COLS})
        SELECT c.ancestor_code, f.day, {_FCOLS}
        FROM (
            -- summed per (filing unit, day) before fanning out to ancestors: a rebuild of
            -- millions of records fans out thousands of rows, not millions
            SELECT unit_code, recv_day, {_sums(received)}
            FROM {signed} x
            GROUP BY 1, 2
            UNION ALL
            SELECT unit_code, {finished_day}, {_sums(finished)}
            FROM {signed} x
            WHERE {finished_day} IS NOT NULL
            GROUP BY 1, 2
        ) AS f(unit_code, day, {_COLS})
        JOIN unit_closure c ON c.descendant_code = f.unit_code
        """,
    )


async def _fold_open_due(session: AsyncSession, feed: str, facts: str) -> None:
    """Move the open-with-a-due-date set of `feed` by this round's facts (`{facts}_new`
    counted in, `{facts}_old` counted out), at every ancestor of the record's unit."""
    await _exec(
        session,
        f"""
        INSERT INTO ko (unit_code, feed, due_at, n)
        SELECT c.ancestor_code, :feed, f.open_due, f.s
        FROM (SELECT 1 AS s, unit_code, open_due FROM {facts}_new
              UNION ALL SELECT -1, unit_code, open_due FROM {facts}_old) f
        JOIN unit_closure c ON c.descendant_code = f.unit_code
        WHERE f.open_due IS NOT NULL
        """,
        feed=feed,
    )


async def _prepare(session: AsyncSession) -> None:
    # Facts of this round, signed and already at ancestor level.
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
    # Response-time facts of this round at ancestor level (moving `kpi_resp_hist`).
    await _exec(
        session,
        "CREATE TEMP TABLE IF NOT EXISTS kh (unit_code text, day date, bucket integer, "
        "n bigint) ON COMMIT DROP",
    )
    await _exec(session, "TRUNCATE kf, ko, ks, kh")


async def _dossiers(session: AsyncSession, source: Source) -> int:
    await _new_table(session, "kd_new", source)
    await _exec(
        session,
        """
        CREATE TEMP TABLE kd_old ON COMMIT DROP AS
        SELECT p.* FROM kpi_dossier_proj p JOIN kd_new n USING (dossier_id)
        """,
    )
    await _fold_counts(
        session,
        "kd",
        received={
            "d_received": "s",
            "d_online": "s * online::int",
            "d_digitized": "s * digitized::int",
            "d_paid": "s * paid::int",
        },
        finished_day="fin_day",
        finished={"d_finished": "s", "d_ontime": "s * ontime::int"},
    )
    await _fold_open_due(session, "dossiers", "kd")
    # Online dossiers per (filing unit, procedure, day) feed the service-usage KPI.
    await _exec(
        session,
        f"""
        INSERT INTO kpi_service_day AS t (unit_code, procedure_code, day, n)
        SELECT unit_code, procedure_code, recv_day, sum(s)
        FROM {_signed("kd")} f
        WHERE online
        GROUP BY 1, 2, 3 HAVING sum(s) <> 0
        ON CONFLICT (unit_code, procedure_code, day) DO UPDATE SET n = t.n + EXCLUDED.n
        """,
    )
    await _exec(
        session,
        """
        INSERT INTO ks (unit_code, procedure_code)
        SELECT unit_code, procedure_code FROM kd_new WHERE online
        UNION SELECT unit_code, procedure_code FROM kd_old WHERE online
        """,
    )
    await _exec(
        session,
        """
        DELETE FROM kpi_service_day t USING (
            SELECT unit_code, procedure_code, recv_day FROM kd_new WHERE online
            UNION SELECT unit_code, procedure_code, recv_day FROM kd_old WHERE online
        ) x
        WHERE t.unit_code = x.unit_code AND t.procedure_code = x.procedure_code
          AND t.day = x.recv_day AND t.n = 0
        """,
    )
    await _exec(
        session,
        """
        INSERT INTO kpi_dossier_proj AS p SELECT * FROM kd_new
        ON CONFLICT (dossier_id) DO UPDATE SET unit_code = EXCLUDED.unit_code,
            procedure_code = EXCLUDED.procedure_code, recv_day = EXCLUDED.recv_day,
            online = EXCLUDED.online, digitized = EXCLUDED.digitized, paid = EXCLUDED.paid,
            fin_day = EXCLUDED.fin_day, ontime = EXCLUDED.ontime, open_due = EXCLUDED.open_due
        """,
    )
    n = (await session.execute(text("SELECT count(*) FROM kd_new"))).scalar_one()
    await _exec(session, "DROP TABLE kd_new, kd_old")
    return int(n)


async def _reports(session: AsyncSession, source: Source) -> tuple[int, set[str]]:
    await _new_table(session, "kr_new", source)
    await _exec(
        session,
        """
        CREATE TEMP TABLE kr_old ON COMMIT DROP AS
        SELECT p.* FROM kpi_report_proj p JOIN kr_new n USING (report_id)
        """,
    )
    await _fold_counts(
        session,
        "kr",
        received={"r_received": "s"},
        finished_day="resolved_day",
        finished={"r_resolved": "s", "r_ontime": "s * ontime::int"},
    )
    await _fold_open_due(session, "reports", "kr")
    await _exec(
        session,
        f"""
        INSERT INTO kh (unit_code, day, bucket, n)
        SELECT c.ancestor_code, f.day, f.bucket, sum(f.n)
        FROM (
            SELECT unit_code, recv_day AS day, resp_bucket AS bucket, sum(s) AS n
            FROM {_signed("kr")} x
            WHERE resp_seconds IS NOT NULL
            GROUP BY 1, 2, 3
        ) f
        JOIN unit_closure c ON c.descendant_code = f.unit_code
        GROUP BY 1, 2, 3 HAVING sum(f.n) <> 0
        """,
    )
    await _exec(
        session,
        """
        INSERT INTO kpi_resp_hist AS h (unit_code, grain, period, bucket, n)
        SELECT unit_code, g.grain,
               CASE WHEN g.grain = 'd' THEN day ELSE date_trunc('month', day)::date END,
               bucket, sum(n)
        FROM kh CROSS JOIN (VALUES ('d'::"char"), ('m'::"char")) AS g(grain)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
        ON CONFLICT (unit_code, grain, period, bucket) DO UPDATE SET n = h.n + EXCLUDED.n
        """,
    )
    await _exec(session, "DELETE FROM kpi_resp_hist WHERE n = 0")
    # Note whose median may have moved.
    rows = await session.execute(
        text(
            """
            WITH moved AS (
                SELECT n.unit_code AS new_unit, o.unit_code AS old_unit
                FROM kr_new n LEFT JOIN kr_old o USING (report_id)
                WHERE n.resp_seconds IS DISTINCT FROM o.resp_seconds
                   OR n.unit_code IS DISTINCT FROM o.unit_code
                   OR n.recv_day IS DISTINCT FROM o.recv_day
            ), touched AS (
                SELECT DISTINCT new_unit AS unit_code FROM moved
                UNION SELECT old_unit FROM moved WHERE old_unit IS NOT NULL
            )
            SELECT DISTINCT c.ancestor_code
            FROM touched t JOIN unit_closure c ON c.descendant_code = t.unit_code
            """
        )
    )
    median_units = {r[0] for r in rows}
    await _exec(
        session,
        """
        INSERT INTO kpi_report_proj AS p SELECT * FROM kr_new
        ON CONFLICT (report_id) DO UPDATE SET unit_code = EXCLUDED.unit_code,
            recv_day = EXCLUDED.recv_day, resolved_day = EXCLUDED.resolved_day,
            ontime = EXCLUDED.ontime, resp_seconds = EXCLUDED.resp_seconds,
            resp_bucket = EXCLUDED.resp_bucket, open_due = EXCLUDED.open_due
        """,
    )
    n = (await session.execute(text("SELECT count(*) FROM kr_new"))).scalar_one()
    await _exec(session, "DROP TABLE kr_new, kr_old")
    return int(n), median_units


async def _documents(session: AsyncSession, source: Source) -> int:
    await _new_table(session, "kdoc_new", source)
    await _exec(
        session,
        """
        CREATE TEMP TABLE kdoc_old ON COMMIT DROP AS
        SELECT p.* FROM kpi_document_proj p JOIN kdoc_new n USING (document_pk)
        """,
    )
    await _exec(
        session,
        f"""
        INSERT INTO kf (unit_code, day, {_COLS})
        SELECT a.ancestor_code, f.sent_day,
               {_sums({"doc_sent": "f.s", "doc_electronic": "f.s * f.electronic::int"})}
        FROM {_signed("kdoc")} f
        CROSS JOIN LATERAL (
            SELECT DISTINCT c.ancestor_code FROM unnest(f.units) AS u(code)
            JOIN unit_closure c ON c.descendant_code = u.code) a
        GROUP BY 1, 2
        """,
    )
    await _exec(
        session,
        f"""
        INSERT INTO ko (unit_code, feed, due_at, n)
        SELECT a.ancestor_code, 'documents', f.due_at, f.s
        FROM {_signed("kdoc")} f
        CROSS JOIN LATERAL (
            SELECT DISTINCT c.ancestor_code FROM unnest(f.open_units) AS u(code)
            JOIN unit_closure c ON c.descendant_code = u.code) a
        WHERE f.due_at IS NOT NULL
        """,
    )
    await _exec(
        session,
        """
        INSERT INTO kpi_document_proj AS p SELECT * FROM kdoc_new
        ON CONFLICT (document_pk) DO UPDATE SET units = EXCLUDED.units,
            open_units = EXCLUDED.open_units, sent_day = EXCLUDED.sent_day,
            electronic = EXCLUDED.electronic, due_at = EXCLUDED.due_at
        """,
    )
    n = (await session.execute(text("SELECT count(*) FROM kdoc_new"))).scalar_one()
    await _exec(session, "DROP TABLE kdoc_new, kdoc_old")
    return int(n)


async def _procedures(session: AsyncSession, source: Source) -> int:
    if source.journal is None:
        sql, params = (
            f"INSERT INTO ks (unit_code, procedure_code) {CHANGED_PROCEDURES}",
            {
                "lo": source.lo,
                "hi": source.hi,
            },
        )
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


async def _services(session: AsyncSession) -> None:
    """Recompute the state of every touched (unit, procedure) service and roll the change of
    its (offered, last online day) into `kpi_service_usage`."""
    await _exec(
        session,
        """
        CREATE TEMP TABLE ksv ON COMMIT DROP AS
        WITH t AS (SELECT DISTINCT unit_code, procedure_code FROM ks)
        SELECT t.unit_code, t.procedure_code, coalesce(p.offered, false) AS offered,
               d.last_day, o.offered AS old_offered, o.last_day AS old_last_day
        FROM t
        LEFT JOIN (
            SELECT pr.unit_code, pr.code, bool_or(pr.online) AS offered
            FROM procedures pr JOIN t ON t.unit_code = pr.unit_code AND t.procedure_code = pr.code
            GROUP BY 1, 2
        ) p ON p.unit_code = t.unit_code AND p.code = t.procedure_code
        -- the last day by one backward probe of the key per service, not all its days
        LEFT JOIN LATERAL (
            SELECT sd.day AS last_day FROM kpi_service_day sd
            WHERE sd.unit_code = t.unit_code AND sd.procedure_code = t.procedure_code
            ORDER BY sd.day DESC LIMIT 1
        ) d ON true
        LEFT JOIN kpi_service o
            ON o.unit_code = t.unit_code AND o.procedure_code = t.procedure_code
        """,
    )
    await _exec(
        session,
        """
        INSERT INTO kpi_service_usage AS u (unit_code, last_day, n)
        SELECT c.ancestor_code, f.last_day, sum(f.s)
        FROM (
            SELECT unit_code, coalesce(last_day, '-infinity') AS last_day, 1 AS s
            FROM ksv WHERE offered
            UNION ALL
            SELECT unit_code, coalesce(old_last_day, '-infinity'), -1
            FROM ksv WHERE old_offered
        ) f JOIN unit_closure c ON c.descendant_code = f.unit_code
        GROUP BY 1, 2 HAVING sum(f.s) <> 0
        ON CONFLICT (unit_code, last_day) DO UPDATE SET n = u.n + EXCLUDED.n
        """,
    )
    await _exec(session, "DELETE FROM kpi_service_usage WHERE n = 0")
    await _exec(
        session,
        """
        INSERT INTO kpi_service AS s (unit_code, procedure_code, offered, last_day)
        SELECT unit_code, procedure_code, offered, last_day FROM ksv
        ON CONFLICT (unit_code, procedure_code) DO UPDATE
            SET offered = EXCLUDED.offered, last_day = EXCLUDED.last_day
        """,
    )
    await _exec(
        session,
        """
        DELETE FROM kpi_service s USING ksv
        WHERE s.unit_code = ksv.unit_code AND s.procedure_code = ksv.procedure_code
          AND NOT ksv.offered AND ksv.last_day IS NULL
        """,
    )
    await _exec(session, "DROP TABLE ksv")


async def _flush_facts(session: AsyncSession) -> set[str]:
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
    rows = await session.execute(text("SELECT unit_code FROM kf UNION SELECT unit_code FROM ko"))
    return {r[0] for r in rows}


async def _changed_feeds(session: AsyncSession, lo: int, hi: int) -> set[str]:
    """Which tables have records in (lo, hi]: a round touching one feed skips the others."""
    row = (
        await session.execute(
            text(
                """
                SELECT EXISTS (SELECT 1 FROM dossiers WHERE change_seq > :lo AND change_seq <= :hi),
                       EXISTS (SELECT 1 FROM reports WHERE change_seq > :lo AND change_seq <= :hi),
                       EXISTS (SELECT 1 FROM documents
                               WHERE change_seq > :lo AND change_seq <= :hi),
                       EXISTS (SELECT 1 FROM procedures
                               WHERE change_seq > :lo AND change_seq <= :hi)
                """
            ),
            {"lo": lo, "hi": hi},
        )
    ).one()
    feeds = ("dossiers", "reports", "documents", "procedures")
    return {f for f, changed in zip(feeds, row, strict=True) if changed}


async def _journal_feeds(session: AsyncSession, journal: int) -> set[str]:
    row = (
        await session.execute(
            text(
                "SELECT dossiers IS NOT NULL, reports IS NOT NULL, documents IS NOT NULL, "
                "procedures IS NOT NULL FROM kpi_journal WHERE id = :id"
            ),
            {"id": journal},
        )
    ).one()
    feeds = ("dossiers", "reports", "documents", "procedures")
    return {f for f, present in zip(feeds, row, strict=True) if present}


async def apply_changes(session: AsyncSession, source: Source) -> Applied:
    """Fold the records of `source` into the aggregates (caller's transaction)."""
    feeds = (
        await _changed_feeds(session, source.lo, source.hi)
        if source.journal is None
        else await _journal_feeds(session, source.journal)
    )
    applied = Applied()
    if not feeds:
        return applied
    await _prepare(session)
    applied.facts = True
    if "dossiers" in feeds:
        applied.records += await _dossiers(session, source)
    if "reports" in feeds:
        n_reports, applied.median_units = await _reports(session, source)
        applied.records += n_reports
    if "documents" in feeds:
        applied.records += await _documents(session, source)
    if "procedures" in feeds:
        applied.records += await _procedures(session, source)
    if feeds & {"dossiers", "procedures"}:
        await _services(session)
    applied.units = await _flush_facts(session)
    applied.units |= applied.median_units
    # Services whose usage changed touch their unit's ancestors too.
    rows = await session.execute(
        text(
            "SELECT DISTINCT c.ancestor_code FROM ks "
            "JOIN unit_closure c ON c.descendant_code = ks.unit_code"
        )
    )
    applied.units |= {r[0] for r in rows}
    return applied


async def clear(session: AsyncSession) -> None:
    """Empty every aggregate and projection (the first step of a rebuild)."""
    await _exec(
        session,
        "TRUNCATE kpi_dossier_proj, kpi_report_proj, kpi_document_proj, kpi_counts, kpi_open, "
        "kpi_service_day, kpi_service, kpi_service_usage, kpi_resp_hist, kpi_journal",
    )
