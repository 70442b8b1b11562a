"""Fixtures of the live room: its own database (so other rooms' events never reach these
screens), tokens in it, real websocket clients and event publishing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from ioc.auth import create_token
from ioc.db import Database
from ioc.events import NewEvent, publish
from ioc.kpis import run_round
from tests.conftest import DatabaseFactory, RunningServer, ServerMaker

AS_OF = "2026-11-27T10:00:00+07:00"


@pytest.fixture(scope="session")
async def live_url(databases: DatabaseFactory) -> str:
    """A database of our own, with the KPI engine's first round already done: servers
    started on it publish no KPI events of their own unless records arrive."""
    url = await databases.create()
    database = Database(url, pool_size=1)
    try:
        async with database.session() as session:
            await run_round(session)
    finally:
        await database.close()
    return url


@pytest.fixture
def live_server(make_server: ServerMaker, live_url: str) -> ServerMaker:
    """`await live_server(**settings)`: a server on the module's database, with the rooms
    that publish events on their own (alerts, feeds) switched off."""

    async def make(**overrides: Any) -> RunningServer:
        overrides = {"alerts_enabled": False, "feeds_enabled": False, **overrides}
        return await make_server(url=live_url, **overrides)

    return make


@pytest.fixture(scope="session")
async def live_db(live_url: str) -> AsyncIterator[Database]:
    database = Database(live_url, pool_size=3)
    yield database
    await database.close()


async def token_for(db: Database, role: str, unit: str | None) -> str:
    async with db.session() as session:
        secret, _ = await create_token(
            session, name=f"live-{role}-{unit}", role=role, unit_code=unit
        )
    return secret


def kpi_event(unit: str, window: str, kpi: str, value: float, **extra: Any) -> NewEvent:
    return NewEvent(
        type="kpi",
        unit_code=unit,
        time_window=window,
        subject=kpi,
        payload={
            "unit": unit,
            "window": window,
            "as_of": AS_OF,
            "kpi": {
                "id": kpi,
                "value": value,
                "numerator": value,
                "denominator": None,
                "target": None,
                "status": "ok",
                **extra,
            },
        },
    )


def alert_event(unit: str, name: str) -> NewEvent:
    return NewEvent(
        type="alert",
        unit_code=unit,
        subject=name,
        payload={"alert": {"rule": name, "unit": unit, "state": "firing"}},
    )


async def emit(db: Database, *events: NewEvent) -> list[int]:
    """Commit events to the log (as the KPI engine and alerts do); return their seqs."""
    async with db.session() as session:
        return await publish(session, list(events))


async def connect(url: str, token: str | None, **kwargs: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await websockets.connect(
        url, additional_headers=headers, open_timeout=10, compression=None, **kwargs
    )


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def recv(
    ws: ClientConnection, *, timeout: float = 30.0, pings: bool = False
) -> dict[str, Any]:
    """The next message (skipping pings/pongs unless asked), within a generous timeout."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if pings or message["type"] not in ("ping", "pong"):
            return message


async def subscribe(
    ws: ClientConnection, unit: str, windows: list[str], since: int | None = None
) -> None:
    message: dict[str, Any] = {"type": "subscribe", "unit": unit, "windows": windows}
    if since is not None:
        message["since"] = since
    await send(ws, message)
