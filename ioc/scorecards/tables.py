"""The scorecard room's tables: values entered for indicators ioc cannot compute (kept as
history: the newest per indicator, unit and period counts), and the scorecards of closed
periods (stored once; a recompute adds a new version and says what changed)."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from ioc.db import NOW, TIMESTAMPTZ, metadata

indicator_values = Table(
    "indicator_values",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("indicator", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("value", Double, nullable=False),
    Column("note", Text),
    Column("source", Text, nullable=False),  # api | file:<name>
    Column("entered_by", Text, nullable=False),
    Column("entered_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    CheckConstraint("value = value AND value >= 0", name="value"),
    Index("ix_indicator_values_lookup", "unit_code", "indicator", "period", "id"),
)

scorecards_closed = Table(
    "scorecards_closed",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("scorecard", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("total", Double, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("closed_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("reason", Text, nullable=False),  # closed | recomputed by <who>
    UniqueConstraint("scorecard", "unit_code", "period", "version", name="uq_scorecards_closed"),
)
