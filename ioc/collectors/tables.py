"""The collectors' tables: the records as received (dossiers, procedures, reports,
documents), their history, the dead-letters, and the pull cursors.

Written by the ingest pipeline only; every record row carries `change_seq`, drawn from
`record_change_seq` under the ingest lock, so readers can tail records in commit order.
Records have no foreign key to `units` (the pipeline resolves the unit itself, migration
0008) and history rows none to their record (written from the ids just upserted, 0009).
"""

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
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Sequence,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ioc.db import NOW, TIMESTAMPTZ, metadata

record_change_seq = Sequence("record_change_seq", metadata=metadata)


dossiers = Table(
    "dossiers",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("procedure_code", Text, nullable=False),
    Column("procedure_name", Text),
    Column("sector_code", Text),
    Column("sector_name", Text),
    Column("channel", SmallInteger, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("unit_ref", Text, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False),
    Column("due_at", TIMESTAMPTZ),
    Column("finished_at", TIMESTAMPTZ),
    Column("returned_at", TIMESTAMPTZ),
    Column("status", SmallInteger, nullable=False),
    Column("service_level", SmallInteger),
    Column("digitized", Boolean, nullable=False, server_default=text("false")),
    Column("paid_online", Boolean, nullable=False, server_default=text("false")),
    Column("applicant_name", Text),
    Column("applicant_phone", Text),
    Column("applicant_email", Text),
    Column("applicant_address", Text),
    Column("source_updated_at", TIMESTAMPTZ, nullable=False),
    Column("raw", JSONB, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    # What the Decision 766 indicators need (migration 0016; docs/collectors.md).
    Column("paid_online_code", SmallInteger),
    Column("result_files", Integer, nullable=False, server_default=text("0")),
    Column("e_result", Boolean, nullable=False, server_default=text("false")),
    Column("fee_total", Numeric, nullable=False, server_default=text("0")),
    Column("data_reused", Boolean, nullable=False, server_default=text("false")),
    Column("vneid_verified", Boolean, nullable=False, server_default=text("false")),
    Column("national_db_used", Boolean, nullable=False, server_default=text("false")),
    Column("refused_at", TIMESTAMPTZ),
    Column("closed_at", TIMESTAMPTZ),
    Column("accepted", Boolean, nullable=False, server_default=text("true")),
    Column("supplements", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("supplement_count", Integer, nullable=False, server_default=text("0")),
    Column("supplement_requested_at", TIMESTAMPTZ),
    Column("supplement_seconds", BigInteger, nullable=False, server_default=text("0")),
    Column("due_moved_at", TIMESTAMPTZ),
    CheckConstraint("channel IN (1, 2, 3)", name="channel"),
    CheckConstraint("status BETWEEN 1 AND 10", name="status"),
    UniqueConstraint("source", "source_id", name="uq_dossiers_source_id"),
    Index("ix_dossiers_change_seq", "change_seq"),
    # dossiers whose due date comes from their procedure's legal duration (0017)
    Index(
        "ix_dossiers_no_due_procedure", "procedure_code", postgresql_where=text("due_at IS NULL")
    ),
)

dossier_history = Table(
    "dossier_history",
    metadata,
    Column("dossier_id", BigInteger, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False),
    Column("origin", Text, nullable=False),
    Column("actor", Text),
    Column("department", Text),
    Column("note", Text),
    Column("raw", JSONB),
    CheckConstraint("origin IN ('sync', 'progress')", name="origin"),
    PrimaryKeyConstraint("dossier_id", "at", "status", name="pk_dossier_history"),
)

procedures = Table(
    "procedures",
    metadata,
    Column("source", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("name", Text),
    Column("sector_code", Text),
    Column("service_level", SmallInteger),
    Column("online", Boolean, nullable=False),
    Column("raw", JSONB, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("legal_days", Numeric),  # the legal maximum duration, in working days (0016)
    PrimaryKeyConstraint("source", "code", "unit_code", name="pk_procedures"),
    Index("ix_procedures_change_seq", "change_seq"),
    Index("ix_procedures_code", "code"),
)

reports = Table(
    "reports",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False),
    Column("channel", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("unit_ref", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("assigned_to", Text),
    Column("due_at", TIMESTAMPTZ),
    Column("first_response_at", TIMESTAMPTZ),
    Column("resolved_at", TIMESTAMPTZ),
    Column("title", Text),
    Column("content", Text),
    Column("citizen_name", Text),
    Column("citizen_phone", Text),
    Column("lat", Double),
    Column("lon", Double),
    Column("source_updated_at", TIMESTAMPTZ, nullable=False),
    Column("raw", JSONB, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("rating", Text),  # the citizen's (0016)
    Column("rejected_at", TIMESTAMPTZ),
    CheckConstraint(
        "status IN ('received', 'assigned', 'in_progress', 'resolved', 'rejected')",
        name="status",
    ),
    CheckConstraint("rating IN ('satisfied', 'dissatisfied')", name="rating"),
    UniqueConstraint("source", "source_id", name="uq_reports_source_id"),
    Index("ix_reports_change_seq", "change_seq"),
)

report_history = Table(
    "report_history",
    metadata,
    Column("report_id", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("report_id", "at", "status", name="pk_report_history"),
)

# Reports of agencies (*báo cáo*, migration 0021): one row per report requested of a unit
# for one period, with its deadline and when and how it was filed (docs/collectors.md).
agency_reports = Table(
    "agency_reports",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("unit_ref", Text, nullable=False),
    Column("regime", Text),
    Column("title", Text),
    Column("period", Text),
    Column("frequency", Text),
    Column("receiver", Text),
    Column("requested_at", TIMESTAMPTZ, nullable=False),
    Column("due_at", TIMESTAMPTZ, nullable=False),
    Column("status", Text, nullable=False),
    Column("filed_at", TIMESTAMPTZ),
    Column("channel", Text),
    Column("source_updated_at", TIMESTAMPTZ, nullable=False),
    Column("raw", JSONB, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    CheckConstraint(
        "status IN ('requested', 'filed', 'accepted', 'cancelled')", name="status"
    ),
    CheckConstraint("channel IN ('online', 'paper')", name="channel"),
    UniqueConstraint("source", "source_id", name="uq_agency_reports_source_id"),
    Index("ix_agency_reports_change_seq", "change_seq"),
    # the overdue ones of a unit's subtree (`overdue_agency_reports`)
    Index(
        "ix_agency_reports_unfiled_due", "due_at",
        postgresql_where=text("filed_at IS NULL AND status <> 'cancelled'"),
    ),
)  # fmt: skip

agency_report_history = Table(
    "agency_report_history",
    metadata,
    Column("agency_report_id", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint(
        "agency_report_id", "at", "status", name="pk_agency_report_history"
    ),
)  # fmt: skip

documents = Table(
    "documents",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("document_id", Text, nullable=False),
    Column("sender_organ", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code")),
    Column("code_number", Text),
    Column("code_notation", Text),
    Column("promulgated_on", Date),
    Column("document_type", Text),
    Column("document_type_name", Text),
    Column("subject", Text),
    Column("signer_name", Text),
    Column("due_on", Date),
    Column("priority", SmallInteger),
    Column("steering_type", SmallInteger),
    Column("electronic", Boolean, nullable=False, server_default=text("true")),
    Column("business_type", SmallInteger),
    Column("status", Text),
    Column("status_at", TIMESTAMPTZ),
    Column("completed_at", TIMESTAMPTZ),
    Column("attachments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("sent_at", TIMESTAMPTZ, nullable=False),
    Column("raw_xml", Text, nullable=False),
    Column("change_seq", BigInteger, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    UniqueConstraint("source", "document_id", name="uq_documents_document_id"),
    Index("ix_documents_change_seq", "change_seq"),
    Index("ix_documents_unit_sent", "unit_code", "sent_at"),
)

document_recipients = Table(
    "document_recipients",
    metadata,
    Column("document_pk", BigInteger, ForeignKey("documents.id", ondelete="CASCADE"),
           nullable=False),
    Column("organ_id", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code")),
    Column("status", Text),
    Column("status_at", TIMESTAMPTZ),
    Column("completed_at", TIMESTAMPTZ),
    PrimaryKeyConstraint("document_pk", "organ_id", name="pk_document_recipients"),
    Index("ix_document_recipients_unit", "unit_code"),
)  # fmt: skip

document_status_history = Table(
    "document_status_history",
    metadata,
    Column("document_pk", BigInteger, ForeignKey("documents.id", ondelete="CASCADE"),
           nullable=False),
    Column("organ_id", Text, nullable=False),
    Column("status_code", Text, nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False),
    Column("description", Text),
    Column("department", Text),
    Column("staff", Text),
    Column("raw_xml", Text, nullable=False),
    PrimaryKeyConstraint(
        "document_pk", "organ_id", "status_code", "at", name="pk_document_status_history"
    ),
)  # fmt: skip

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("feed", Text, nullable=False),
    Column("record_id", Text),
    Column("unit_code", Text),
    Column("content_type", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("replayed_at", TIMESTAMPTZ),
    Column("replay_outcome", Text),
    Column("format", Text, nullable=False, server_default=text("'unknown'::text")),
    Column("payload_sha256", LargeBinary),
    Column("times_seen", Integer, nullable=False, server_default=text("1")),
    Column("last_seen_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Index("ix_dead_letters_received_at", "received_at"),
    Index("ix_dead_letters_pending", "id", postgresql_where=text("replayed_at IS NULL")),
    # A re-sent reject bumps its pending dead-letter (`ON CONFLICT … WHERE replayed_at IS NULL`).
    Index(
        "uq_dead_letters_pending", "source", "format", "payload_sha256",
        unique=True, postgresql_where=text("replayed_at IS NULL"),
    ),
)  # fmt: skip

source_cursors = Table(
    "source_cursors",
    metadata,
    Column("source", Text, primary_key=True),
    Column("feed", Text, nullable=False),
    Column("cursor", Text),
    Column("last_success_at", TIMESTAMPTZ),
    Column("last_attempt_at", TIMESTAMPTZ),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    Column("records_total", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
)
