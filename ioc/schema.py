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

from ioc.alerts import tables as alerts_tables
from ioc.auth import tables as auth_tables
from ioc.collectors import tables as collectors_tables
from ioc.db.base import PgChar, metadata
from ioc.events import tables as events_tables
from ioc.feeds import tables as feeds_tables
from ioc.kpis import tables as kpis_tables
from ioc.privacy import tables as privacy_tables
from ioc.units import tables as units_tables

# The rooms whose tables make the schema (importing them registers their tables).
ROOMS = (
    units_tables, auth_tables, collectors_tables, events_tables, kpis_tables, alerts_tables,
    feeds_tables, privacy_tables,
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
