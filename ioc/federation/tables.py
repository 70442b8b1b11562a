"""The federation room's tables: what an upstream `ioc` delivered — the de-duplicating inbox,
its events and its latest KPI values."""

from sqlalchemy import BigInteger, Column, Double, Index, PrimaryKeyConstraint, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from ioc.db import NOW, TIMESTAMPTZ, metadata

federation_inbox = Table(
    "federation_inbox",
    metadata,
    Column("webhook_id", Text, primary_key=True),
    Column("upstream_seq", BigInteger),
    Column("type", Text),
    Column("received_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Index("ix_federation_inbox_received_at", "received_at"),
)

federation_events = Table(
    "federation_events",
    metadata,
    Column("upstream_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False),
    Column("unit_code", Text),
    Column("data", JSONB, nullable=False),
    Column("webhook_id", Text, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Index("ix_federation_events_unit", "unit_code", "upstream_seq"),
    Index("ix_federation_events_received_at", "received_at"),
)

federation_kpis = Table(
    "federation_kpis",
    metadata,
    Column("unit_code", Text, nullable=False),
    Column("time_window", Text, nullable=False),
    Column("kpi_id", Text, nullable=False),
    Column("value", Double),
    Column("numerator", Double),
    Column("denominator", Double),
    Column("target", Double),
    Column("status", Text),
    Column("as_of", TIMESTAMPTZ),
    Column("upstream_seq", BigInteger, nullable=False),
    Column("received_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("unit_code", "time_window", "kpi_id", name="pk_federation_kpis"),
)
