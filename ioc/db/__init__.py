"""Database access: metadata, engine, sessions, the embedded server and migrations."""

from ioc.db.base import NOW, TIMESTAMPTZ, PgChar, metadata
from ioc.db.engine import (
    Database,
    asyncpg_dsn,
    driver_connection,
    resolve_database_url,
    sqlalchemy_url,
)
from ioc.db.migrate import current_heads, downgrade, script_heads, upgrade

__all__ = [
    "NOW",
    "TIMESTAMPTZ",
    "Database",
    "PgChar",
    "asyncpg_dsn",
    "current_heads",
    "downgrade",
    "driver_connection",
    "metadata",
    "resolve_database_url",
    "script_heads",
    "sqlalchemy_url",
    "upgrade",
]
