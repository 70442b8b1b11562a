"""Fixtures of the feeds tests: a fresh database per test (deliveries are global per
database), receivers, and helpers to publish events and read subscriptions."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ioc.auth import create_token
from ioc.db import Database
from ioc.events import NewEvent, publish
from ioc.localtime import LOCAL_TZ
from ioc.webhooks import new_secret
from tests.collectors.factories import dossier
from tests.conftest import DatabaseFactory, free_port
from tests.feeds.receiver import Receiver

# Quick retries and polling: the feeds tests wait on deliveries, never on timing.
FAST: dict[str, Any] = {
    "feeds_loop_seconds": 0.2,
    "feeds_retry_base_seconds": 0.05,
    "feeds_retry_max_seconds": 0.2,
    "feeds_timeout_seconds": 5,
}


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


async def subscribe(
    server_url: str,
    bearer: str,
    url: str,
    unit: str = "689",
    kpis: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Subscribe to kpi (and alert) events; `kpis` narrows to test-private KPI ids."""
    if kpis is not None:
        extra = {"topics": ["kpi"], "filters": {"kpis": kpis}, **extra}
    async with httpx.AsyncClient(base_url=server_url, timeout=10) as http:
        resp = await http.post(
            "/api/v1/subscriptions",
            json={"url": url, "unit": unit, "topics": ["kpi", "alert"], **extra},
            headers={"Authorization": f"Bearer {bearer}"},
        )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until true; generous timeout, no timing assertion."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class ServeProcess:
    """`python -m ioc serve` in a process of its own on 127.0.0.1, configured like a
    deployment (IOC_* environment), its output kept in a temporary file for failures."""

    def __init__(self, name: str, database_url: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix=f"ioc-{name}-", suffix=".log")[1])
        self.env = {
            **os.environ,
            "IOC_DATABASE_URL": database_url,
            "IOC_HOST": "127.0.0.1",
            "IOC_PORT": str(self.port),
            "IOC_PUBLIC_URL": self.url,
            "IOC_MIGRATE_ON_START": "false",
            "IOC_WEBHOOKS_ALLOW_PRIVATE": "true",  # the district's inbox is on 127.0.0.1
            **{f"IOC_{key.upper()}": str(value) for key, value in settings.items()},
        }
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self, timeout: float = 90.0) -> None:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ioc", "serve", env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise AssertionError(f"{self.name} exited: {self.tail()}")
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} never answered: {self.tail()}")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.log.unlink(missing_ok=True)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Federation:
    """Two `ioc serve` processes on one PostgreSQL server, each on its own database: a
    province and a district whose `IOC_FEDERATION_SECRET` is `secret` (docs/feeds.md,
    two-instance set-up)."""

    province: ServeProcess
    district: ServeProcess
    province_db: Database
    district_db: Database
    secret: str

    @property
    def inbox(self) -> str:
        return f"{self.district.url}/api/v1/federation/inbox"

    async def subscribe(
        self, unit: str = "689", topics: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Step 4 of the set-up: with a province token for `unit`, the district subscribes
        its inbox to the province's feed, bringing its secret."""
        upstream_token = await token(self.province_db, "district", unit)
        async with httpx.AsyncClient(timeout=10) as http:
            created = await http.post(
                f"{self.province.url}/api/v1/subscriptions",
                json={
                    "url": self.inbox,
                    "unit": unit,
                    "topics": topics or ["kpi"],
                    "secret": self.secret,
                    **extra,
                },
                headers={"Authorization": f"Bearer {upstream_token}"},
            )
        assert created.status_code == 201, created.text
        sub: dict[str, Any] = created.json()
        assert sub["secret"] == self.secret
        return sub

    async def ingest_dossiers(self, *records: dict[str, Any]) -> None:
        """The province's portal pushes dossiers (POST /api/v1/ingest/dossiers)."""
        collector = await token(self.province_db, "collector", "70")
        async with httpx.AsyncClient(timeout=30) as http:
            res = await http.post(
                f"{self.province.url}/api/v1/ingest/dossiers",
                json=list(records),
                headers={"Authorization": f"Bearer {collector}"},
            )
        assert res.status_code < 300, res.text
        assert res.json()["accepted"] == len(records), res.text

    async def province_engine_ready(self) -> None:
        """The province's KPI engine has run its first round: from now on every change it
        computes is published (the first round only initialises)."""

        async def ready() -> bool:
            async with self.province_db.session() as session:
                done = (await session.execute(text("SELECT initialised FROM kpi_state"))).scalar()
            return bool(done)

        await eventually(ready, what="the province's KPI engine")


@asynccontextmanager
async def two_instances(
    databases: DatabaseFactory, *, province_url: str | None = None, **district_settings: Any
) -> AsyncIterator[Federation]:
    """A province and a district `ioc serve` process (the district configured with a fresh
    federation secret and `district_settings`), on their own databases unless
    `province_url` is given; both stopped at the end."""
    province_url = province_url or await databases.create()
    district_url = await databases.create()
    province_db = Database(province_url, pool_size=2)
    district_db = Database(district_url, pool_size=2)
    secret = new_secret()
    district = ServeProcess(
        "district", district_url, {**FAST, "federation_secret": secret, **district_settings}
    )
    province = ServeProcess("province", province_url, FAST)
    try:
        await asyncio.gather(district.start(), province.start())
        yield Federation(province, district, province_db, district_db, secret)
    finally:
        await asyncio.gather(province.stop(), district.stop())
        async with province_db.session() as session:
            await session.execute(
                text("DELETE FROM feed_subscriptions WHERE url LIKE '%/federation/inbox'")
            )
        await province_db.close()
        await district_db.close()


def todays_dossier(ident: str, unit: str, *, channel: int = 2) -> dict[str, Any]:
    """A dossier received a moment ago (never before local midnight: the window is today),
    due in three days, in the portal's wire shape."""
    now = datetime.now(LOCAL_TZ)
    received = max(now - timedelta(seconds=30), now.replace(hour=0, minute=0, second=1))
    return dossier(
        ident,
        MaDonVi=unit,
        KenhThucHien=channel,
        NgayTiepNhan=received.strftime("%Y%m%d%H%M%S"),
        NgayHenTra=(now + timedelta(days=3)).strftime("%Y%m%d%H%M%S"),
    )
