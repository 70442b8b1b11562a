"""The privacy room's table: who read which citizen's personal data, when and why."""

from sqlalchemy import BigInteger, CheckConstraint, Column, Identity, Index, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from ioc.db import NOW, TIMESTAMPTZ, metadata

personal_data_access_log = Table(
    "personal_data_access_log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("token_id", UUID, nullable=False),
    Column("token_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("token_unit", Text),
    Column("record_kind", Text, nullable=False),
    Column("record_key", Text, nullable=False),
    Column("unit_code", Text),
    Column("fields", ARRAY(Text), nullable=False),
    Column("reason", Text, nullable=False),
    Column("route", Text, nullable=False),
    CheckConstraint("length(reason) >= 5", name="reason"),
    CheckConstraint("record_kind IN ('dossier', 'report', 'dead_letter')", name="record_kind"),
    Index("ix_personal_data_access_log_at", "at"),
    Index("ix_personal_data_access_log_token", "token_id", "at"),
)
