"""Shared fixtures: a real PostgreSQL database per test run, a real server on a real socket.

`IOC_DATABASE_URL` set → a fresh database is created on that server for this run and dropped
after it (never another database). Unset → an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from ioc.app import create_app
from ioc.auth import create_token
from ioc.db import Database, upgrade
from ioc.db.engine import asyncpg_dsn, start_embedded, stop_embedded, with_database
from ioc.live import WS_IMPLEMENTATION
from ioc.settings import Settings
from ioc.units import DEMO_FILES, DEMO_ORGANS, load_organs_csv, load_units_csv

SERVER_URL_ENV = "IOC_DATABASE_URL"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database; an embedded one is stopped and its
    directory removed at the end of the run."""
    url = os.environ.get(SERVER_URL_ENV)
    if url:
        yield with_database(url, "postgres")
        return
    # Not under pytest's 0700 temp dirs: as root, the embedded server runs as its own user,
    # which must be able to reach its data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="ioc-test-pg-"))
    data_dir.chmod(0o755)
    try:
        yield with_database(start_embedded(data_dir), "postgres")
    finally:
        stop_embedded()
        left = embedded_postgres_left(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert left == [], f"the run left its embedded PostgreSQL running: {left}"


def embedded_postgres_left(data_dir: Path) -> list[int]:
    """Ids of postgres processes still running on a data directory under `data_dir`."""
    import psutil

    return [
        proc.pid
        for proc in psutil.process_iter(attrs=["name", "cmdline"])
        if proc.info["name"] == "postgres" and str(data_dir) in " ".join(proc.info["cmdline"] or [])
    ]


class DatabaseFactory:
    """Creates throw-away, migrated databases on the test server and drops them at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    async def create(self, *, migrate: bool = True, demo_units: bool = True) -> str:
        name = f"ioc_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(asyncpg_dsn(self.server_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        url = with_database(self.server_url, name)
        if migrate:
            await upgrade(url)
            if demo_units:
                await load_demo_units(url)
        return url

    async def drop_all(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.server_url))
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def load_demo_units(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
            await load_organs_csv(session, Path(DEMO_ORGANS))
    finally:
        await db.close()


@pytest.fixture(scope="session")
async def databases(server_url: str) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(server_url)
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
async def database_url(databases: DatabaseFactory) -> str:
    """The run's shared database: migrated from scratch, demo province (70) loaded."""
    return await databases.create()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=5)
    yield database
    await database.close()


TokenMaker = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def make_token(db: Database) -> TokenMaker:
    """`await make_token("district", "689")` → a bearer token for that role and unit."""

    async def make(role: str, unit: str | None = "70", name: str | None = None) -> str:
        async with db.session() as session:
            secret, _ = await create_token(
                session, name=name or f"test-{role}-{unit}", role=role, unit_code=unit
            )
        return secret

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    """An `ioc` app served by uvicorn on a real 127.0.0.1 socket inside the test loop."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self.port = free_port()
        self.settings = settings.model_copy(
            update={"port": self.port, "public_url": f"http://127.0.0.1:{self.port}"}
        )
        self.app = create_app(self.settings, database_url=database_url)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            ws=WS_IMPLEMENTATION,
            ws_max_size=64 * 1024,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


def test_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": None,
        "migrate_on_start": False,
        "webhooks_allow_private": True,
        # One test process starts hundreds of apps: frozen objects are never collected.
        "gc_freeze_on_start": False,
    }
    base.update(overrides)
    return Settings(**base)


ServerMaker = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def make_server(database_url: str) -> AsyncIterator[ServerMaker]:
    """`await make_server(**settings)` → a started server on the run's database (or `url=`)."""
    started: list[RunningServer] = []

    async def make(url: str | None = None, **overrides: Any) -> RunningServer:
        server = RunningServer(test_settings(**overrides), url or database_url)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def server(make_server: ServerMaker) -> RunningServer:
    return await make_server()


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="session")
def output_dir() -> Iterator[Path]:
    """Where tests leave artefacts for humans (screenshots): ./test-output."""
    path = Path(__file__).resolve().parent.parent / "test-output"
    path.mkdir(exist_ok=True)
    yield path
