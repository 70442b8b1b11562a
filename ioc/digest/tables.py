"""The digest room's tables: who receives a unit's weekly digest, and each digest sent (one
row per recipient, unit and week: the claim that makes it go out once)."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Double,
    Identity,
    Integer,
    Table,
    Text,
    UniqueConstraint,
)

from ioc.db import NOW, TIMESTAMPTZ, metadata

digest_recipients = Table(
    "digest_recipients",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("unit_code", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("name", Text),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    UniqueConstraint("unit_code", "email", name="uq_digest_recipients"),
)

digest_sends = Table(
    "digest_sends",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("email", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("week_start", Date, nullable=False),
    Column("state", Text, nullable=False),
    Column("claimed_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("sent_at", TIMESTAMPTZ),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("scorecard_total", Double),
    CheckConstraint("state IN ('sending', 'sent', 'failed')", name="state"),
    UniqueConstraint("email", "unit_code", "week_start", name="uq_digest_sends"),
)
