"""Migrations 0006 and 0029 (the feeds branch) are reversible: downgrade drops what they made."""

from __future__ import annotations

import asyncpg

from ioc.db import current_heads, downgrade, upgrade
from ioc.db.engine import asyncpg_dsn
from tests.conftest import DatabaseFactory

TABLES = [
    "federation_events",
    "federation_inbox",
    "federation_kpis",
    "feed_deliveries",
    "feed_record_cursors",
    "feed_subscriptions",
]


async def _tables(url: str) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'feed%' "
            "OR tablename LIKE 'federation%' ORDER BY tablename"
        )
        return [r["tablename"] for r in rows]
    finally:
        await conn.close()


async def test_feeds_migration_round_trip(databases: DatabaseFactory) -> None:
    url = await databases.create(demo_units=False)
    assert "0029_feeds_scorecard_topic" in await current_heads(url)  # the feeds branch's head
    assert await _tables(url) == TABLES
    await downgrade(url, "0029_feeds_scorecard_topic@-2")
    assert not {"0006", "0029_feeds_scorecard_topic"} & await current_heads(url)
    assert await _tables(url) == []
    await upgrade(url)
    assert await _tables(url) == TABLES
