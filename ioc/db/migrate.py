"""Alembic, driven from code: the migrations ship inside the package (`ioc/migrations`)."""

from __future__ import annotations

import asyncio
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


async def upgrade(url: str, target: str = "heads") -> None:
    """Apply migrations up to `target` (default: every head)."""
    await asyncio.to_thread(_upgrade, url, target)


async def downgrade(url: str, target: str = "base") -> None:
    """Revert migrations down to `target`."""
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
