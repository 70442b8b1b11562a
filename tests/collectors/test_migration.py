"""Migrations 0008 (no FK from records' unit_code to units) and 0009 (no unused record
indexes, no history FKs) round-trip."""

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


LEAN = """
SELECT indexname FROM pg_indexes WHERE indexname IN ('ix_dossiers_unit_received',
    'ix_dossiers_unit_finished', 'ix_dossiers_open_due', 'ix_reports_unit_received',
    'ix_reports_open_due')
UNION ALL
SELECT conname FROM pg_constraint WHERE conname IN ('dossier_history_dossier_id_fkey',
    'report_history_report_id_fkey')
"""


async def _lean_objects(url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {r[0] for r in await conn.fetch(LEAN)}
    finally:
        await conn.close()


async def test_0009_drops_and_restores_unused_indexes_and_history_fks(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create(migrate=False)
    await upgrade(url)
    assert await _lean_objects(url) == set()
    await downgrade(url, "0008")
    assert await _lean_objects(url) == {
        "ix_dossiers_unit_received", "ix_dossiers_unit_finished", "ix_dossiers_open_due",
        "ix_reports_unit_received", "ix_reports_open_due", "dossier_history_dossier_id_fkey",
        "report_history_report_id_fkey",
    }  # fmt: skip
    await upgrade(url)
    assert await current_heads(url) == script_heads()
    assert await _lean_objects(url) == set()
