"""The event log's retention purge (a leased loop service)."""

from __future__ import annotations

from sqlalchemy import text

from ioc.db import Database
from ioc.db.engine import asyncpg_dsn
from ioc.live import EventRetention
from ioc.settings import Settings
from tests.live.conftest import emit, kpi_event


async def test_purge_removes_only_events_older_than_the_retention(live_db: Database) -> None:
    seqs = await emit(live_db, *[kpi_event("689", "today", f"old{i}", i) for i in range(3)])
    fresh = await emit(live_db, kpi_event("689", "today", "fresh", 1))
    async with live_db.session() as session:
        await session.execute(
            text("UPDATE events SET created_at = now() - interval '5 hours' WHERE seq = ANY(:s)"),
            {"s": seqs},
        )
    service = EventRetention(
        live_db,
        Settings(events_retention_hours=4),
        dsn=asyncpg_dsn(live_db.url),
    )
    assert service.leased
    await service.run_once()
    async with live_db.session() as session:
        left = (
            (
                await session.execute(
                    text("SELECT seq FROM events WHERE seq = ANY(:s) ORDER BY seq"),
                    {"s": seqs + fresh},
                )
            )
            .scalars()
            .all()
        )
    assert left == fresh
