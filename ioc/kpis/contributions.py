"""What one source record contributes to the KPIs, and the counters it adds to.

Each feed's *contribution* is derived from its raw row by one SQL expression below (local
days, flags, open due moment). A rebuild folds it into the aggregates (`aggregates.py`); the
engine's round reads it back beside the record's previous contribution (its projection row,
`kpi_*_proj`), moves its memory by the difference and journals it for the fold — one
expression for both, so they cannot disagree.

`COUNTERS` says which counter of `kpi_counts` a contribution adds to, on which of its days
and by which of its flags; the SQL fold (`aggregates.py`) and the engine's memory
(`facts.py`) both read it. Adding a counter-based KPI: a column in the contribution (and its
projection table), a row in `COUNTERS` (and a `kpi_counts` column), and the KPI's `terms` in
the catalogue (docs/kpis.md, "How to add a KPI").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ioc.calendar import deadline_sql
from ioc.localtime import LOCAL_TZ_NAME as TZ


@dataclass(frozen=True, slots=True)
class Counter:
    """One additive counter of `kpi_counts`: each contribution of `feed` adds 1 (or its
    `flag` column as 0/1 or a number) on the local day in its `day` column, when set."""

    name: str
    feed: str
    day: str
    flag: str | None = None


COUNTERS: tuple[Counter, ...] = (
    Counter("d_received", "dossiers", "recv_day"),
    Counter("d_online", "dossiers", "recv_day", "online"),
    Counter("d_digitized", "dossiers", "recv_day", "digitized"),
    Counter("d_paid", "dossiers", "recv_day", "paid"),
    Counter("d_finished", "dossiers", "fin_day"),
    Counter("d_ontime", "dossiers", "fin_day", "ontime"),
    Counter("r_received", "reports", "recv_day"),
    Counter("r_resolved", "reports", "resolved_day"),
    Counter("r_ontime", "reports", "resolved_day", "ontime"),
    Counter("doc_sent", "documents", "sent_day"),
    Counter("doc_electronic", "documents", "sent_day", "electronic"),
    # Decision 766 (docs/indicators-766.md): on the received day, the finishing day, and the
    # day processing ended by the 766 rules (refused, stopped, withdrawn, finished, waiting)
    Counter("i_online", "dossiers", "recv_day", "i_online"),
    Counter("i_fee", "dossiers", "recv_day", "i_fee"),
    Counter("i_paid", "dossiers", "recv_day", "i_paid"),
    Counter("i_digit", "dossiers", "recv_day", "i_digit"),
    Counter("i_reuse", "dossiers", "recv_day", "i_reuse"),
    Counter("i_popdb", "dossiers", "recv_day", "i_popdb"),
    Counter("i_result", "dossiers", "fin_day", "i_result"),
    Counter("i_eresult", "dossiers", "fin_day", "i_eresult"),
    Counter("i_ended", "dossiers", "end_day"),
    Counter("i_ontime", "dossiers", "end_day", "i_ontime"),
    Counter("ir_ended", "reports", "end_day"),
    Counter("ir_ontime", "reports", "end_day", "ir_ontime"),
    Counter("ir_satisfied", "reports", "recv_day", "ir_satisfied"),
    # reports of agencies (báo cáo): filed (online) on the day filed, due (on time) on the
    # day due; a cancelled request counts nowhere
    Counter("ar_filed", "agency_reports", "filed_day"),
    Counter("ar_online", "agency_reports", "filed_day", "online"),
    Counter("ar_due", "agency_reports", "due_day"),
    Counter("ar_ontime", "agency_reports", "due_day", "ontime"),
)
# The columns of `kpi_counts` (and of every counter array), in this order.
COUNT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COUNTERS)


# A fixed moment before every clock: open sets whose every entry is "overdue" at once, so that
# the overdue machinery counts the records open (the 766 rates' open part, the catalogue).
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
EPOCH_SQL = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_PAUSE = "d.supplement_seconds * interval '1 second'"
# A procedure's legal maximum duration (working days, a fraction rounded up; the largest when
# its catalogue rows disagree) after the dossier's receipt.
_LEGAL_DEADLINE = deadline_sql(
    "d.received_at",
    "ceil((SELECT max(p.legal_days) FROM procedures p WHERE p.code = d.procedure_code))::int",
)
# Decision 766, 2.1 (docs/indicators-766.md): the end of processing (refused or stopped,
# withdrawn after acceptance, finished, a pending supplement request), whether the dossier
# counts at all, and its deadline (NgayHenTra, else the procedure's legal duration).
_DOSSIER_766 = f"""
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.status IN (3, 8) OR d.status = 7 AND d.accepted
                    THEN coalesce(d.closed_at, d.refused_at)
                WHEN d.status = 7 THEN NULL
                WHEN d.finished_at IS NOT NULL THEN d.finished_at
                WHEN d.status = 5 THEN d.supplement_requested_at END AS end_at,
           NOT (d.status = 7 AND NOT d.accepted)
               AND NOT (d.status IN (3, 7, 8)
                        AND coalesce(d.closed_at, d.refused_at) IS NULL) AS counted,
           coalesce(d.due_at, CASE WHEN d.due_at IS NULL THEN {_LEGAL_DEADLINE} END)
               AS deadline
) x
"""
_DOSSIER_SELECT = f"""
SELECT d.id AS dossier_id, d.unit_code, d.procedure_code,
       (d.received_at AT TIME ZONE '{TZ}')::date AS recv_day,
       d.channel = 2 AS online,
       d.digitized,
       d.channel = 2 AND d.paid_online AS paid,
       CASE WHEN d.finished_at IS NOT NULL AND d.status NOT IN (3, 7, 8)
            THEN (d.finished_at AT TIME ZONE '{TZ}')::date END AS fin_day,
       coalesce(d.due_at IS NULL OR d.finished_at <= d.due_at, false) AS ontime,
       -- waiting for the citizen (5) is never overdue; a moved date (NgayHenTraMoi) is
       -- followed, else NgayHenTra plus the completed supplement pauses
       CASE WHEN d.finished_at IS NULL AND d.status NOT IN (3, 5, 7, 8)
            THEN coalesce(d.due_moved_at, d.due_at + {_PAUSE}) END AS open_due,
       d.channel = 2 AND (d.result_files = 0 OR d.e_result) AS i_online,
       d.fee_total > 0 OR d.paid_online AS i_fee,
       d.paid_online AS i_paid,
       d.digitized AND (d.result_files = 0 OR d.e_result) AS i_digit,
       d.data_reused AS i_reuse,
       d.vneid_verified OR d.national_db_used AS i_popdb,
       d.result_files > 0 AS i_result,
       d.result_files > 0 AND d.e_result AS i_eresult,
       (x.end_at AT TIME ZONE '{TZ}')::date AS end_day,
       coalesce(x.end_at IS NOT NULL AND d.supplement_count <= 1
                AND (x.deadline IS NULL OR x.end_at - {_PAUSE} <= x.deadline), false)
           AS i_ontime,
       x.counted AND x.end_at IS NULL AS open766,
       CASE WHEN x.counted AND x.end_at IS NULL THEN
            CASE WHEN d.supplement_count > 1 THEN {EPOCH_SQL}
                 ELSE x.deadline + {_PAUSE} END END AS open766_due
FROM dossiers d {_DOSSIER_766}
"""
DOSSIER_CONTRIBUTION = f"{_DOSSIER_SELECT} WHERE d.change_seq > :lo AND d.change_seq <= :hi"
# The dossiers without a due date, not changed in (lo, hi], whose procedure's catalogue rows
# changed (their legal duration may have): the engine's round reads them too when procedures
# changed (`changes.read_changes`; a rebuild reads every dossier anyway).
DOSSIER_RELEGAL = f"""{_DOSSIER_SELECT}
WHERE d.due_at IS NULL AND d.procedure_code = ANY (ARRAY(
        SELECT code FROM procedures WHERE change_seq > :lo AND change_seq <= :hi))
    AND NOT (d.change_seq > :lo AND d.change_seq <= :hi)
"""
# 5.2: 15 working days to handle a report, 2 to refuse it, from its receipt.
REPORT_CONTRIBUTION = f"""
SELECT r.id AS report_id, r.unit_code,
       (r.received_at AT TIME ZONE '{TZ}')::date AS recv_day,
       CASE WHEN r.resolved_at IS NOT NULL AND r.status <> 'rejected'
            THEN (r.resolved_at AT TIME ZONE '{TZ}')::date END AS resolved_day,
       coalesce(r.due_at IS NULL OR r.resolved_at <= r.due_at, false) AS ontime,
       extract(epoch FROM r.first_response_at - r.received_at)::double precision
           AS resp_seconds,
       CASE WHEN r.resolved_at IS NULL AND r.status <> 'rejected' THEN r.due_at END
           AS open_due,
       (x.end_at AT TIME ZONE '{TZ}')::date AS end_day,
       coalesce(x.end_at <= x.deadline, false) AS ir_ontime,
       r.rating IS DISTINCT FROM 'dissatisfied' AND NOT coalesce(x.end_at > x.deadline, false)
           AS ir_satisfied,
       x.open AS open766,
       CASE WHEN x.open THEN x.deadline END AS open766_due
FROM reports r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.status = 'rejected' THEN r.rejected_at ELSE r.resolved_at END AS end_at,
           r.status <> 'rejected' AND r.resolved_at IS NULL AS open,
           CASE WHEN r.status = 'rejected' THEN {deadline_sql("r.received_at", "2")}
                ELSE {deadline_sql("r.received_at", "15")} END AS deadline
) x
WHERE r.change_seq > :lo AND r.change_seq <= :hi
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
# Reports of agencies: filed on time = filed by the deadline; open = neither filed nor
# cancelled (overdue once `due_at` has passed).
AGENCY_REPORT_CONTRIBUTION = f"""
SELECT a.id AS agency_report_id, a.unit_code,
       CASE WHEN a.status <> 'cancelled' AND a.filed_at IS NOT NULL
            THEN (a.filed_at AT TIME ZONE '{TZ}')::date END AS filed_day,
       coalesce(a.channel = 'online', false) AS online,
       CASE WHEN a.status <> 'cancelled' THEN (a.due_at AT TIME ZONE '{TZ}')::date END
           AS due_day,
       coalesce(a.filed_at <= a.due_at, false) AS ontime,
       CASE WHEN a.status <> 'cancelled' AND a.filed_at IS NULL THEN a.due_at END AS open_due
FROM agency_reports a WHERE a.change_seq > :lo AND a.change_seq <= :hi
"""
CHANGED_PROCEDURES = """
SELECT DISTINCT unit_code, code FROM procedures WHERE change_seq > :lo AND change_seq <= :hi
"""


@dataclass(frozen=True, slots=True)
class ProjectedFeed:
    """A feed whose records contribute to counters: its contribution SQL, the projection
    table holding each record's last contribution (`key` = its primary key), that table's
    columns as a record type (the journal's JSON rows are read back with it), and the prefix
    of the fold's temporary tables (`<temp>_new`, `<temp>_old`)."""

    feed: str
    contribution: str
    projection: str
    key: str
    columns: str
    temp: str
    # the open sets a record joins (`kpi_open` feed) and the SQL of its due moment there
    # (a contribution's column or an expression of them; NULL: not in the set)
    opens: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.split()[0] for c in self.columns.split(", ")]

    @property
    def signed(self) -> str:
        """The fold's facts of this feed as one relation: new contributions counted in
        (s = 1), old ones counted out (s = -1)."""
        return (
            f"(SELECT 1 AS s, * FROM {self.temp}_new UNION ALL SELECT -1, * FROM {self.temp}_old)"
        )


DOSSIERS = ProjectedFeed(
    "dossiers",
    DOSSIER_CONTRIBUTION,
    "kpi_dossier_proj",
    "dossier_id",
    "dossier_id bigint, unit_code text, procedure_code text, recv_day date, online boolean, "
    "digitized boolean, paid boolean, fin_day date, ontime boolean, open_due timestamptz, "
    "i_online boolean, i_fee boolean, i_paid boolean, i_digit boolean, i_reuse boolean, "
    "i_popdb boolean, i_result boolean, i_eresult boolean, end_day date, i_ontime boolean, "
    "open766 boolean, open766_due timestamptz",
    "kd",
    (
        ("dossiers", "open_due"),
        ("dossiers766", "open766_due"),
        ("dossiers766_all", f"CASE WHEN open766 THEN {EPOCH_SQL} END"),
    ),
)
REPORTS = ProjectedFeed(
    "reports",
    REPORT_CONTRIBUTION,
    "kpi_report_proj",
    "report_id",
    "report_id bigint, unit_code text, recv_day date, resolved_day date, ontime boolean, "
    "resp_seconds double precision, open_due timestamptz, end_day date, ir_ontime boolean, "
    "ir_satisfied boolean, open766 boolean, open766_due timestamptz",
    "kr",
    (
        ("reports", "open_due"),
        ("reports766", "open766_due"),
        ("reports766_all", f"CASE WHEN open766 THEN {EPOCH_SQL} END"),
    ),
)
DOCUMENTS = ProjectedFeed(
    "documents",
    DOCUMENT_CONTRIBUTION,
    "kpi_document_proj",
    "document_pk",
    "document_pk bigint, units text[], open_units text[], sent_day date, electronic boolean, "
    "due_at timestamptz",
    "kdoc",
    (("documents", "due_at"),),
)
AGENCY_REPORTS = ProjectedFeed(
    "agency_reports",
    AGENCY_REPORT_CONTRIBUTION,
    "kpi_agency_report_proj",
    "agency_report_id",
    "agency_report_id bigint, unit_code text, filed_day date, online boolean, due_day date, "
    "ontime boolean, open_due timestamptz",
    "kar",
    (("agency_reports", "open_due"),),
)
PROJECTED_FEEDS: tuple[ProjectedFeed, ...] = (DOSSIERS, REPORTS, DOCUMENTS, AGENCY_REPORTS)
# Every source table the engine tails by change_seq (procedures: the online-service catalogue).
SOURCE_TABLES: tuple[str, ...] = (
    "dossiers",
    "reports",
    "documents",
    "procedures",
    "agency_reports",
)
# The feeds with open records and due moments (`kpi_open`, the overdue counts), in this order:
# the plain ones, the 766 open sets judged by the 766 deadlines and "every open one" (at
# `EPOCH`), and the catalogue's listed services (at `EPOCH`: its count is the number listed).
OPEN_FEEDS: tuple[str, ...] = (
    "dossiers",
    "reports",
    "documents",
    "dossiers766",
    "dossiers766_all",
    "reports766",
    "reports766_all",
    "catalogue",
    "agency_reports",
)


def counters_by_day(feed: str) -> dict[str, list[Counter]]:
    """The counters of `feed`, grouped by the contribution day they count on."""
    out: dict[str, list[Counter]] = {}
    for counter in COUNTERS:
        if counter.feed == feed:
            out.setdefault(counter.day, []).append(counter)
    return out
