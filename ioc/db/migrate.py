"""Alembic, driven from code: the migrations ship inside the package (`ioc/migrations`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["ioc_url"] = url
    return cfg


def _upgrade(url: str, target: str) -> None:
    command.upgrade(alembic_config(url), target)


def _downgrade(url: str, target: str) -> None:
    command.downgrade(alembic_config(url), target)


@asynccontextmanager
async def _migration_lock(url: str) -> AsyncIterator[None]:
    """Hold a session advisory lock of this database while migrating: replicas started
    together (`IOC_MIGRATE_ON_START`) migrate one after the other instead of racing to
    create the same tables; the later ones then find nothing to do."""
    import asyncpg

    from ioc.db.engine import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('ioc.migrations'))")
        yield
    finally:
        await conn.close()  # ends the session, so the lock goes even if unlocking fails


async def upgrade(url: str, target: str = "heads") -> None:
    """Apply migrations up to `target` (default: every head), one process at a time."""
    async with _migration_lock(url):
        await asyncio.to_thread(_upgrade, url, target)


async def downgrade(url: str, target: str = "base") -> None:
    """Revert migrations down to `target`, one process at a time."""
    async with _migration_lock(url):
        await asyncio.to_thread(_downgrade, url, target)


def script_heads() -> set[str]:
    """The head revisions shipped with this version of `ioc`."""
    return set(ScriptDirectory.from_config(alembic_config("postgresql://")).get_heads())


async def current_heads(conn_url: str) -> set[str]:
    """The revisions applied to the database at `conn_url`."""
    import asyncpg

    from ioc.db.engine import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(conn_url), timeout=5)
    try:
        exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not exists:
            return set()
        rows = await conn.fetch("SELECT version_num FROM alembic_version")
        return {r["version_num"] for r in rows}
    finally:
        await conn.close()
