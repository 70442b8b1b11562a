"""Migration 0008 (no FK from records' unit_code to units) round-trips."""

from __future__ import annotations

import asyncpg

from ioc.db import current_heads, downgrade, script_heads, upgrade
from ioc.db.engine import asyncpg_dsn

from ..conftest import DatabaseFactory

FKS = "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conname LIKE '%unit_code_fkey'"


async def _unit_fks(url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {r[0] for r in await conn.fetch(FKS)} & {
            "dossiers_unit_code_fkey", "reports_unit_code_fkey", "procedures_unit_code_fkey",
        }  # fmt: skip
    finally:
        await conn.close()


async def test_0008_drops_and_restores_the_unit_foreign_keys(databases: DatabaseFactory) -> None:
    url = await databases.create(migrate=False)
    await upgrade(url)
    assert await _unit_fks(url) == set()
    await downgrade(url, "0002")
    assert await _unit_fks(url) == {
        "dossiers_unit_code_fkey", "reports_unit_code_fkey", "procedures_unit_code_fkey",
    }  # fmt: skip
    await upgrade(url)
    assert await current_heads(url) == script_heads()
    assert await _unit_fks(url) == set()
