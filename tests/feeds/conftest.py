"""Fixtures of the feeds tests: a fresh database per test (deliveries are global per
database), receivers, and helpers to publish events and read subscriptions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from ioc.auth import create_token
from ioc.db import Database
from ioc.events import NewEvent, publish
from tests.conftest import DatabaseFactory
from tests.feeds.receiver import Receiver


@pytest.fixture
async def feed_db_url(databases: DatabaseFactory) -> str:
    return await databases.create()


@pytest.fixture
async def feed_db(feed_db_url: str) -> AsyncIterator[Database]:
    database = Database(feed_db_url, pool_size=3)
    yield database
    await database.close()


@pytest.fixture
async def receivers(db: Database) -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """Start receivers; at the end stop them and drop the shared database's subscriptions to
    them, so later tests (of any room) on that database do not keep delivering there."""
    started: list[Receiver] = []

    async def make(**kwargs: Any) -> Receiver:
        receiver = Receiver(**kwargs)
        await receiver.start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        await receiver.stop()
    async with db.session() as session:
        await session.execute(
            text("DELETE FROM feed_subscriptions WHERE url = ANY(:urls)"),
            {"urls": [r.url for r in started]},
        )


def unique_kpi() -> str:
    """A KPI id no other test (of any room) publishes: subscriptions filter on it, so tests
    can share the run's database with other rooms' background services."""
    return f"t_{uuid.uuid4().hex[:10]}"


async def token(db: Database, role: str, unit: str | None) -> str:
    async with db.session() as session:
        secret, _ = await create_token(session, name=f"t-{role}-{unit}", role=role, unit_code=unit)
    return secret


def kpi_event(unit: str, kpi: str, value: float, window: str = "today") -> NewEvent:
    return NewEvent(
        type="kpi",
        unit_code=unit,
        time_window=window,
        subject=kpi,
        payload={
            "unit": unit,
            "window": window,
            "as_of": "2026-11-27T10:00:00+07:00",
            "kpi": {
                "id": kpi,
                "value": value,
                "numerator": value * 100,
                "denominator": 100,
                "target": 0.5,
                "status": "ok" if value >= 0.5 else "bad",
            },
        },
    )


async def publish_events(db: Database, events: list[NewEvent]) -> list[int]:
    async with db.session() as session:
        return await publish(session, events)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until true; generous timeout, no timing assertion."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
