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
)
# The columns of `kpi_counts` (and of every counter array), in this order.
COUNT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COUNTERS)


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
    "digitized boolean, paid boolean, fin_day date, ontime boolean, open_due timestamptz",
    "kd",
)
REPORTS = ProjectedFeed(
    "reports",
    REPORT_CONTRIBUTION,
    "kpi_report_proj",
    "report_id",
    "report_id bigint, unit_code text, recv_day date, resolved_day date, ontime boolean, "
    "resp_seconds double precision, open_due timestamptz",
    "kr",
)
DOCUMENTS = ProjectedFeed(
    "documents",
    DOCUMENT_CONTRIBUTION,
    "kpi_document_proj",
    "document_pk",
    "document_pk bigint, units text[], open_units text[], sent_day date, electronic boolean, "
    "due_at timestamptz",
    "kdoc",
)
PROJECTED_FEEDS: tuple[ProjectedFeed, ...] = (DOSSIERS, REPORTS, DOCUMENTS)
# Every source table the engine tails by change_seq (procedures: the online-service catalogue).
SOURCE_TABLES: tuple[str, ...] = ("dossiers", "reports", "documents", "procedures")
# The feeds with open records and due moments (`kpi_open`, the overdue counts), in this order.
OPEN_FEEDS: tuple[str, ...] = ("dossiers", "reports", "documents")


def counters_by_day(feed: str) -> dict[str, list[Counter]]:
    """The counters of `feed`, grouped by the contribution day they count on."""
    out: dict[str, list[Counter]] = {}
    for counter in COUNTERS:
        if counter.feed == feed:
            out.setdefault(counter.day, []).append(counter)
    return out
