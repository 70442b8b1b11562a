"""The tables in code (`ioc.schema`) and the schema the migrations build are the same.

Three views of one question, each on a database upgraded from empty:
- Alembic's comparison (`compare_metadata`, and `alembic check` through env.py) with the
  options autogenerate uses (`COMPARE_OPTIONS`): tables, columns, types, nullability,
  server defaults, indexes, unique constraints, foreign keys;
- PostgreSQL's own spelling of a database built from the tables (`metadata.create_all`)
  against the migrated one: every column (type, null, default, identity, generated), every
  constraint by name with its definition (check expressions too, which Alembic skips),
  every index by name with its definition (partial, INCLUDE), table storage parameters and
  sequences;
- what `create_all` cannot build: column compression, carried in `Column.info`.
Left out, and why: `ioc.schema.NOT_TABLES` — the `event_log` view (a view is not a table;
it is SQL in migration 0010) and Alembic's own `alembic_version`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Index, MetaData, Text, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ioc.db.engine import sqlalchemy_url
from ioc.db.migrate import alembic_config
from ioc.schema import COMPARE_OPTIONS, NOT_TABLES, metadata
from tests.conftest import DatabaseFactory


@pytest.fixture(scope="module")
async def migrated(databases: DatabaseFactory) -> str:
    return await databases.create(demo_units=False)


@pytest.fixture(scope="module")
async def engine(migrated: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(sqlalchemy_url(migrated))
    yield engine
    await engine.dispose()


def _diff(target: MetaData) -> Any:
    def run(conn: Connection) -> Any:
        context = MigrationContext.configure(
            conn, opts={"target_metadata": target, **COMPARE_OPTIONS}
        )
        return compare_metadata(context, target)

    return run


async def test_migrations_and_tables_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff(metadata))
    assert diff == [], "the migrations and the tables in code differ (see the diff)"


async def test_alembic_check_passes(migrated: str) -> None:
    """`alembic check` (what an operator or CI runs) sees the tables through env.py."""
    await asyncio.to_thread(command.check, alembic_config(migrated))


# The catalogue's own spelling of the schema: what PostgreSQL made of the DDL, whoever wrote
# it. One row per object: (kind, table, name, definition). NOT NULL is read from the columns:
# PostgreSQL 18 also lists it as a named constraint, named after the table it was created in
# (`kpi_current_rows_…` for the renamed `kpi_current`), which no definition can repeat.
_CATALOGUE = text("""
    SELECT 'column', c.relname, a.attname, concat_ws(' ', format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attnotnull THEN 'not null' END,
           'default ' || pg_get_expr(d.adbin, d.adrelid),
           'identity ' || nullif(a.attidentity::text, ''),
           'generated ' || nullif(a.attgenerated::text, ''))
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint', c.relname, con.conname, pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND con.contype <> 'n'
    UNION ALL
    SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' ELSE 'sequence' END, c.relname, '',
           coalesce(array_to_string(c.reloptions, ', '), '')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')
""")


async def _catalogue(url: str) -> set[tuple[str, str, str, str]]:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(_CATALOGUE)).all()
    finally:
        await engine.dispose()
    return {(k, t, n, d) for k, t, n, d in rows if t not in NOT_TABLES}


async def test_the_tables_build_the_migrated_schema(
    databases: DatabaseFactory, migrated: str
) -> None:
    """Names and definitions of every column, constraint, index, storage parameter and
    sequence are the same whether the tables or the migrations built the database."""
    built = await databases.create(migrate=False)
    engine = create_async_engine(sqlalchemy_url(built))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()
    from_tables, from_migrations = await _catalogue(built), await _catalogue(migrated)
    assert sorted(from_migrations - from_tables) == [], "only the migrations make these"
    assert sorted(from_tables - from_migrations) == [], "only the tables make these"


_COMPRESSED = text("""
    SELECT c.relname, a.attname, a.attcompression::text FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND a.attcompression <> ''
""")


async def test_column_compression_agrees(engine: AsyncEngine) -> None:
    """`create_all` cannot set a column's compression; `Column.info` says it, held here.
    Migration 0013 sets lz4 where the server is built with it (else the default stays)."""
    async with engine.connect() as conn:
        compressed = (await conn.execute(_COMPRESSED)).all()
        available = set(
            (
                await conn.execute(
                    text(
                        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
                    )
                )
            ).scalar_one()
        )
    methods = {"l": "lz4", "p": "pglz"}
    assert {(t, c, methods[m]) for t, c, m in compressed} == {
        (table.name, column.name, column.info["compression"])
        for table in metadata.tables.values()
        for column in table.columns
        if column.info.get("compression") in available
    }


async def test_drift_is_noticed(engine: AsyncEngine) -> None:
    """The comparison can fail: a column and an index the migrations never made, and a
    table they made that the code has lost, are each reported."""
    drifted = MetaData(naming_convention=dict(metadata.naming_convention))
    for table in metadata.tables.values():
        if table.name != "organs":
            table.to_metadata(drifted)
    drifted.tables["dossiers"].append_column(Column("imagined", Text))
    Index("ix_reports_imagined", drifted.tables["reports"].c.title)
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff(drifted))
    found = {(d[0], getattr(d[-1], "name", None)) for d in diff if isinstance(d, tuple)}
    assert ("add_column", "imagined") in found
    assert ("add_index", "ix_reports_imagined") in found
    assert ("remove_table", "organs") in found
