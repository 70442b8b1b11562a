"""The KPI room's tables: the engine's state and change journal, its per-record projections,
the per-unit aggregates it keeps (counts per day/month, open items by due time, service
usage), the current values per (unit, window), and KPI targets."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Double,
    ForeignKey,
    Identity,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from ioc.db import NOW, TIMESTAMPTZ, PgChar, metadata

# One row (id = 1): how far the engine has read `record_change_seq`, and its settings.
kpi_state = Table(
    "kpi_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1")),
    Column("change_cursor", BigInteger, nullable=False, server_default=text("0")),
    Column("initialised", Boolean, nullable=False, server_default=text("false")),
    Column("closure_hash", Text),
    Column("last_run_at", TIMESTAMPTZ),
    Column("last_local_day", Date),
    Column("config_targets", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("warn_margin", Double, nullable=False, server_default=text("0.05")),
    Column("generation", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("id = 1", name="id"),
)

kpi_journal = Table(
    "kpi_journal",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("lo", BigInteger, nullable=False),
    Column("hi", BigInteger, nullable=False),
    Column("dossiers", Text),
    Column("reports", Text),
    Column("documents", Text),
    Column("procedures", Text),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("agency_reports", Text),  # 0022
)

# Per dossier, does it count for each Decision 766 indicator (0017).
_I766_FLAGS = (
    "i_online", "i_fee", "i_paid", "i_digit", "i_reuse", "i_popdb", "i_result", "i_eresult",
)  # fmt: skip

kpi_dossier_proj = Table(
    "kpi_dossier_proj",
    metadata,
    Column("dossier_id", BigInteger, primary_key=True, autoincrement=False),
    Column("unit_code", Text, nullable=False),
    Column("procedure_code", Text, nullable=False),
    Column("recv_day", Date, nullable=False),
    Column("online", Boolean, nullable=False),
    Column("digitized", Boolean, nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("fin_day", Date),
    Column("ontime", Boolean, nullable=False),
    Column("open_due", TIMESTAMPTZ),
    # what each Decision 766 indicator counts of this dossier (0017)
    *(Column(c, Boolean, nullable=False, server_default=text("false")) for c in _I766_FLAGS),
    Column("end_day", Date),
    Column("i_ontime", Boolean, nullable=False, server_default=text("false")),
    Column("open766", Boolean, nullable=False, server_default=text("false")),
    Column("open766_due", TIMESTAMPTZ),
)

kpi_report_proj = Table(
    "kpi_report_proj",
    metadata,
    Column("report_id", BigInteger, primary_key=True, autoincrement=False),
    Column("unit_code", Text, nullable=False),
    Column("recv_day", Date, nullable=False),
    Column("resolved_day", Date),
    Column("ontime", Boolean, nullable=False),
    Column("resp_seconds", Double),
    Column("open_due", TIMESTAMPTZ),
    Column("end_day", Date),
    Column("ir_ontime", Boolean, nullable=False, server_default=text("false")),
    Column("ir_satisfied", Boolean, nullable=False, server_default=text("false")),
    Column("open766", Boolean, nullable=False, server_default=text("false")),
    Column("open766_due", TIMESTAMPTZ),
    # every median is selected among these sorted response times (0018)
    Index(
        "ix_kpi_report_proj_resp", "unit_code", "recv_day",
        postgresql_include=["resp_seconds"],
        postgresql_where=text("resp_seconds IS NOT NULL"),
    ),
)  # fmt: skip

kpi_document_proj = Table(
    "kpi_document_proj",
    metadata,
    Column("document_pk", BigInteger, primary_key=True, autoincrement=False),
    Column("units", ARRAY(Text), nullable=False),
    Column("open_units", ARRAY(Text), nullable=False),
    Column("sent_day", Date, nullable=False),
    Column("electronic", Boolean, nullable=False),
    Column("due_at", TIMESTAMPTZ),
)

# What each report of an agency contributes (0022; `contributions.AGENCY_REPORTS`).
kpi_agency_report_proj = Table(
    "kpi_agency_report_proj",
    metadata,
    Column("agency_report_id", BigInteger, primary_key=True, autoincrement=False),
    Column("unit_code", Text, nullable=False),
    Column("filed_day", Date),
    Column("online", Boolean, nullable=False),
    Column("due_day", Date),
    Column("ontime", Boolean, nullable=False),
    Column("open_due", TIMESTAMPTZ),
)

_COUNTS = (
    "d_received", "d_online", "d_digitized", "d_paid", "d_finished", "d_ontime",
    "r_received", "r_resolved", "r_ontime", "doc_sent", "doc_electronic",
)  # fmt: skip
# The Decision 766 counters (0017); the zero-row index predates them and names `_COUNTS` only.
_I766_COUNTS = (
    "i_online", "i_fee", "i_paid", "i_digit", "i_reuse", "i_popdb", "i_result", "i_eresult",
    "i_ended", "i_ontime", "ir_ended", "ir_ontime", "ir_satisfied",
)  # fmt: skip
# The reports of agencies' counters (0022).
_AGENCY_COUNTS = ("ar_filed", "ar_online", "ar_due", "ar_ontime")

kpi_counts = Table(
    "kpi_counts",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("grain", PgChar, nullable=False),
    Column("period", Date, nullable=False),
    *(
        Column(c, BigInteger, nullable=False, server_default=text("0"))
        for c in (*_COUNTS, *_I766_COUNTS, *_AGENCY_COUNTS)
    ),
    CheckConstraint("grain IN ('d', 'm')", name="grain"),
    PrimaryKeyConstraint("unit_code", "grain", "period", name="pk_kpi_counts"),
    # rows whose counts all went back to zero, for the purge
    Index(
        "ix_kpi_counts_zero", "unit_code",
        postgresql_where=text(" AND ".join(f"{c} = 0" for c in _COUNTS)),
    ),
)  # fmt: skip

kpi_open = Table(
    "kpi_open",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("feed", Text, nullable=False),
    Column("due_at", TIMESTAMPTZ, nullable=False),
    Column("n", BigInteger, nullable=False),
    CheckConstraint(
        "feed IN ('dossiers', 'reports', 'documents', 'dossiers766', 'dossiers766_all',"
        " 'reports766', 'reports766_all', 'catalogue', 'agency_reports')",
        name="feed",
    ),
    PrimaryKeyConstraint("unit_code", "feed", "due_at", name="pk_kpi_open"),
    Index("ix_kpi_open_due_at", "due_at"),
)

kpi_service_day = Table(
    "kpi_service_day",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("procedure_code", Text, nullable=False),
    Column("day", Date, nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint("unit_code", "procedure_code", "day", name="pk_kpi_service_day"),
)

kpi_service = Table(
    "kpi_service",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("procedure_code", Text, nullable=False),
    Column("offered", Boolean, nullable=False),
    Column("last_day", Date),
    Column("listed", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("unit_code", "procedure_code", name="pk_kpi_service"),
)

kpi_service_usage = Table(
    "kpi_service_usage",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("last_day", Date, nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint("unit_code", "last_day", name="pk_kpi_service_usage"),
)

kpi_targets = Table(
    "kpi_targets",
    metadata,
    Column("unit_code", Text, ForeignKey("units.code", ondelete="CASCADE"), nullable=False),
    Column("kpi_id", Text, nullable=False),
    Column("target", Double, nullable=False),
    Column("updated_by", Text),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("unit_code", "kpi_id", name="pk_kpi_targets"),
)

# The current KPI values of one (unit, window) as JSON text, rewritten every round (HOT
# updates: fillfactor 50).
kpi_current = Table(
    "kpi_current",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("time_window", Text, nullable=False),
    Column("as_of", TIMESTAMPTZ, nullable=False),
    Column("kpis", Text, nullable=False),
    PrimaryKeyConstraint("unit_code", "time_window", name="pk_kpi_current"),
    postgresql_with={"fillfactor": "50"},
)
