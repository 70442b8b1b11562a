"""Database access: metadata, engine, sessions, the embedded server and migrations."""

from ioc.db.base import metadata
from ioc.db.engine import Database, asyncpg_dsn, sqlalchemy_url
from ioc.db.migrate import current_heads, downgrade, script_heads, upgrade

__all__ = [
    "Database",
    "asyncpg_dsn",
    "current_heads",
    "downgrade",
    "metadata",
    "script_heads",
    "sqlalchemy_url",
    "upgrade",
]
