"""The event log's table: `events`, one row per run of consecutive events of one (type,
unit) — `seq .. last_seq` — read one event per row through the `event_log` view
(docs/architecture.md §2). The view exists only in its migration (0010): a `Table` cannot
describe it. `items` is compressed with lz4 (0013), which a `Column` cannot say either: its
`info` carries it (set by 0013 where the server is built with lz4), and the drift test
holds the database to it."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    Index,
    Integer,
    Sequence,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import conv

from ioc.db import NOW, TIMESTAMPTZ, metadata

# Drawn under the publish lock, so seq order is commit order.
event_seq = Sequence("event_seq", metadata=metadata)

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False),
    Column("unit_code", Text),
    Column("time_window", Text),
    Column("subject", Text),
    Column("payload", JSONB, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False, server_default=NOW),
    Column("n", Integer, nullable=False, server_default=text("1")),
    Column("items", Text, info={"compression": "lz4"}),
    Column("last_seq", BigInteger, Computed("seq + n - 1", persisted=True), nullable=False),
    CheckConstraint("n >= 1 AND (n = 1) = (items IS NULL)", name=conv("ck_events_batch")),
    Index("ix_events_created_at", "created_at"),
    Index("ix_events_unit_seq", "unit_code", "seq"),
    Index("ix_events_last_seq", "last_seq"),
)
