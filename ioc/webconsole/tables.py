"""The console room's one table: what was changed through the console, by whom, when."""

from sqlalchemy import BigInteger, Column, Identity, Index, PrimaryKeyConstraint, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB

from ioc.db import NOW, TIMESTAMPTZ, metadata

console_audit = Table(
    "console_audit",
    metadata,
    Column("id", BigInteger, Identity(always=True), nullable=False),
    Column("at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    PrimaryKeyConstraint("id", name="pk_console_audit"),
    Index("ix_console_audit_action_at", "action", "at"),
)
