"""Alembic environment: async, on the URL `ioc` gives it (never a hard-coded one)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ioc.db.engine import sqlalchemy_url

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
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
