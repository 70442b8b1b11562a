"""The feeds room's tables: webhook subscriptions with their delivery log and the record
events' cursors."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from ioc.db import NOW, TIMESTAMPTZ, metadata

feed_subscriptions = Table(
    "feed_subscriptions",
    metadata,
    Column("id", UUID, primary_key=True),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("url", Text, nullable=False),
    Column("topics", ARRAY(Text), nullable=False),
    Column("kpi_ids", ARRAY(Text)),
    Column("severities", ARRAY(Text)),
    Column("contact_email", Text),
    Column("description", Text),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_expires_at", TIMESTAMPTZ),
    Column("status", Text, nullable=False, server_default=text("'active'::text")),
    Column("status_reason", Text),
    Column("status_changed_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("cursor_seq", BigInteger, nullable=False),
    Column("replay_epoch", Integer, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("first_failure_at", TIMESTAMPTZ),
    Column("next_attempt_at", TIMESTAMPTZ),
    Column("last_success_at", TIMESTAMPTZ),
    Column("last_error", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    CheckConstraint(
        "cardinality(topics) > 0"
        " AND topics <@ ARRAY['kpi', 'alert', 'dossier', 'report', 'document', 'scorecard']",
        name="topics",
    ),
    CheckConstraint("status IN ('active', 'paused', 'failing')", name="status"),
    Index("ix_feed_subscriptions_unit_code", "unit_code"),
)

feed_deliveries = Table(
    "feed_deliveries",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("subscription_id", UUID, ForeignKey("feed_subscriptions.id", ondelete="CASCADE"),
           nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("webhook_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("latency_ms", Double, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Index("ix_feed_deliveries_subscription", "subscription_id", "id"),
    Index("ix_feed_deliveries_at", "at"),
)  # fmt: skip

# How far the record-event projector has read each record table (by `change_seq`).
feed_record_cursors = Table(
    "feed_record_cursors",
    metadata,
    Column("source_table", Text, primary_key=True),
    Column("change_seq", BigInteger, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    CheckConstraint("source_table IN ('dossiers', 'reports', 'documents')", name="source_table"),
)
