"""The whole schema in code: every room's `Table`s, on the one `MetaData` of `ioc.db.base`.

Importing this module registers every room's tables; Alembic's `target_metadata`
(`ioc/migrations/env.py`) and the drift test (`tests/foundation/test_schema_drift.py`) read
it. The migrations stay the way the schema changes; this is what it must come to.
"""

from __future__ import annotations

from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, text
from sqlalchemy.sql.schema import SchemaItem
from sqlalchemy.types import TypeEngine

import ioc.alerts
import ioc.auth
import ioc.calendar
import ioc.collectors
import ioc.digest
import ioc.events
import ioc.federation
import ioc.feeds
import ioc.kpis
import ioc.privacy
import ioc.scorecards
import ioc.units
import ioc.webconsole
from ioc.db import PgChar, metadata

# The rooms with tables: importing a room puts its tables (`ioc/<room>/tables.py`) on the
# one `MetaData`.
ROOMS = (
    ioc.units, ioc.auth, ioc.collectors, ioc.events, ioc.calendar, ioc.kpis, ioc.alerts,
    ioc.feeds, ioc.federation, ioc.privacy, ioc.scorecards, ioc.digest,
)  # fmt: skip

# What a `Table` cannot say, so a comparison must not look for it: the `event_log` view
# (migration 0010; not a table, Alembic reflects tables only) and Alembic's own bookkeeping.
NOT_TABLES = frozenset({"event_log", "alembic_version"})


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """Alembic's filter for autogenerate and `alembic check`: everything but `NOT_TABLES`."""
    return not (type_ == "table" and name in NOT_TABLES)


def compare_type(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic's type comparison, taught PostgreSQL's `"char"`, which SQLAlchemy reflects as
    a plain `String`: ask the catalogue for the column's real type instead."""
    if not isinstance(metadata_type, PgChar):
        return None  # Alembic's own comparison
    assert context.connection is not None and metadata_column.table is not None
    real = context.connection.execute(
        text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = CAST(:table AS regclass) AND attname = :column"
        ),
        {"table": metadata_column.table.name, "column": metadata_column.name},
    ).scalar()
    return bool(real != '"char"')


# The options `alembic check`, autogenerate and the drift test compare with.
COMPARE_OPTIONS: dict[str, Any] = {
    "include_object": include_object,
    "compare_type": compare_type,
    "compare_server_default": True,
}

__all__ = ["COMPARE_OPTIONS", "NOT_TABLES", "ROOMS", "metadata"]
