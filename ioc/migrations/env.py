"""Alembic environment: async, on the URL `ioc` gives it (never a hard-coded one).

`target_metadata` is every room's tables (`ioc.schema`), so `alembic check` and
`alembic revision --autogenerate` compare the database with the tables in code, with the
same options as `tests/foundation/test_schema_drift.py`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ioc.db.engine import sqlalchemy_url
from ioc.schema import COMPARE_OPTIONS, metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        transaction_per_migration=True,
        **COMPARE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = config.attributes.get("ioc_url") or config.get_main_option("sqlalchemy.url")
    engine = create_async_engine(sqlalchemy_url(str(url)))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `ioc db upgrade`")
asyncio.run(_main())
