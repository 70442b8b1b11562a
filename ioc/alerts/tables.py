"""The alerts room's tables: rules, one alert per (rule, unit) with its state, the state
transitions, silences, notifications with one row per delivery attempt, and the evaluator's
cursor in the event log."""

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
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import conv

from ioc.db import NOW, TIMESTAMPTZ, metadata

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kpi", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("each_child", Boolean, nullable=False, server_default=text("false")),
    Column("time_window", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("threshold", Double, nullable=False),
    Column("clear_threshold", Double),
    Column("for_seconds", Integer, nullable=False, server_default=text("0")),
    Column("severity", Text, nullable=False),
    Column("recipients", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("repeat_seconds", Integer, nullable=False, server_default=text("3600")),
    Column("no_data_fires", Boolean, nullable=False, server_default=text("false")),
    Column("webhook_secret", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("deleted_at", TIMESTAMPTZ),
    CheckConstraint("op IN ('<', '<=', '>', '>=')", name="op"),
    CheckConstraint("for_seconds >= 0", name="for_seconds"),
    CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
    CheckConstraint("repeat_seconds >= 0", name="repeat_seconds"),
    Index("ix_alert_rules_kpi", "kpi", "time_window", postgresql_where=text("deleted_at IS NULL")),
    Index("ix_alert_rules_unit", "unit_code"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("rule_id", BigInteger, ForeignKey("alert_rules.id", ondelete="CASCADE"),
           nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("state", Text, nullable=False),
    Column("since", TIMESTAMPTZ, nullable=False),
    Column("pending_since", TIMESTAMPTZ),
    Column("fired_at", TIMESTAMPTZ),
    Column("resolved_at", TIMESTAMPTZ),
    Column("episode", Integer, nullable=False, server_default=text("0")),
    Column("value", Double),
    Column("numerator", Double),
    Column("denominator", Double),
    Column("target", Double),
    Column("as_of", TIMESTAMPTZ),
    Column("observed_at", TIMESTAMPTZ),
    Column("no_data_reason", Text),
    Column("acknowledged_by", Text),
    Column("acknowledged_at", TIMESTAMPTZ),
    Column("ack_comment", Text),
    Column("last_notified_at", TIMESTAMPTZ),
    Column("reminders", Integer, nullable=False, server_default=text("0")),
    CheckConstraint(
        "state IN ('ok', 'pending', 'firing', 'acknowledged', 'resolved', 'no_data', 'closed')",
        name="state",
    ),
    UniqueConstraint("rule_id", "unit_code", name="uq_alerts_rule_unit"),
    Index("ix_alerts_unit_state", "unit_code", "state"),
    Index("ix_alerts_state", "state"),
)  # fmt: skip

alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("value", Double),
    Column("episode", Integer, nullable=False),
    Column("actor", Text),
    Column("comment", Text),
    Index("ix_alert_transitions_alert", "alert_id", "at"),
    Index("ix_alert_transitions_at", "at"),
)

alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("rule_id", BigInteger, ForeignKey("alert_rules.id", ondelete="CASCADE")),
    Column("unit_code", Text, ForeignKey("units.code")),
    Column("starts_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("ends_at", TIMESTAMPTZ, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("expired_by", Text),
    CheckConstraint(
        "rule_id IS NOT NULL OR unit_code IS NOT NULL", name=conv("ck_alert_silences_matcher")
    ),
    Index("ix_alert_silences_ends_at", "ends_at"),
)

alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("notification_id", Text, nullable=False),
    Column("alert_id", BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'::text")),
    Column("message_id", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("next_attempt_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("sent_at", TIMESTAMPTZ),
    Column("last_error", Text),
    CheckConstraint("kind IN ('firing', 'resolved', 'reminder')", name="kind"),
    CheckConstraint("channel IN ('email', 'webhook')", name="channel"),
    CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="status"),
    UniqueConstraint(
        "notification_id", "channel", "recipient", name="uq_alert_notifications_notification_id"
    ),
    Index(
        "ix_alert_notifications_due", "next_attempt_at", postgresql_where=text("status = 'pending'")
    ),
    Index("ix_alert_notifications_alert", "alert_id"),
)

alert_delivery_attempts = Table(
    "alert_delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("notification_pk", BigInteger,
           ForeignKey("alert_notifications.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", Text),
    Column("at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("outcome", Text, nullable=False),
    Column("detail", Text),
    Column("latency_ms", Integer),
    Index("ix_alert_delivery_attempts_notification", "notification_pk"),
)  # fmt: skip

# One row (id = 1): the last event-log seq the evaluator has judged.
alert_cursor = Table(
    "alert_cursor",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    CheckConstraint("id = 1", name="id"),
)
