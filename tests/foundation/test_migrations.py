"""Migrations apply from empty, round-trip down and up, and /readyz notices the database."""

from __future__ import annotations

import asyncpg
import httpx

from ioc.db import current_heads, downgrade, script_heads, upgrade
from ioc.db.engine import asyncpg_dsn
from tests.conftest import DatabaseFactory, ServerMaker


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_downgrade_upgrade(databases: DatabaseFactory) -> None:
    url = await databases.create(migrate=False)
    await upgrade(url)
    assert await current_heads(url) == script_heads()
    full = await _tables(url)
    assert {"units", "unit_closure", "api_tokens", "events", "dossiers"} <= full
    await downgrade(url, "base")
    assert await _tables(url) <= {"alembic_version"}
    assert await current_heads(url) == set()
    await upgrade(url)
    assert await _tables(url) == full


async def test_readyz_fails_when_database_goes_away(
    databases: DatabaseFactory, make_server: ServerMaker
) -> None:
    url = await databases.create()
    server = await make_server(url=url)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        conn = await asyncpg.connect(asyncpg_dsn(databases.server_url))
        try:
            db_name = url.rsplit("/", 1)[1].split("?")[0]
            await conn.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        finally:
            await conn.close()
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"]["ok"] is False
        assert (await http.get("/healthz")).status_code == 200


async def test_readyz_fails_when_migrations_behind(
    databases: DatabaseFactory, make_server: ServerMaker
) -> None:
    url = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("DELETE FROM alembic_version")
        await conn.execute("INSERT INTO alembic_version VALUES ('stale')")
        server = await make_server(url=url)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"]["applied"] == ["stale"]
    finally:
        await conn.execute("DELETE FROM alembic_version")
        await conn.close()
