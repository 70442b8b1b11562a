"""What every `ioc` command needs, for the rooms' `register_cli(app)`: settings that explain
a bad configuration, a database to run against, and a session on it.

Errors end the command with a one-line message and a non-zero exit status: 2 for a bad
configuration, 1 for a domain error (`IocError`: the message says what to do) or an
unreachable database. Never a traceback for what the user can fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from ioc.errors import IocError
from ioc.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def settings_or_exit(**overrides: object) -> Settings:
    """The settings (IOC_* variables, IOC_CONFIG file, `overrides`); exit 2 when invalid."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"ioc: {exc.detail}", err=True)
        raise typer.Exit(2) from None


def run_on_database(
    coro_fn: Callable[[str], Coroutine[Any, Any, T]], settings: Settings | None = None
) -> T:
    """Run `coro_fn(database_url)` against the configured (or embedded) database; exit 1
    with the error's message on a domain error or when the database cannot be reached."""
    from ioc.db import resolve_database_url

    settings = settings or settings_or_exit()
    try:
        url = resolve_database_url(settings)
        return asyncio.run(coro_fn(url))
    except IocError as exc:
        typer.echo(f"ioc: {exc.detail}", err=True)
        for err in exc.errors or []:
            typer.echo(f"  {err}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"ioc: cannot reach the database: {exc}", err=True)
        raise typer.Exit(1) from None


async def in_session(url: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`fn(session)` in one unit of work on the database at `url` (migrated to head first):
    committed when `fn` returns, rolled back when it raises."""
    from ioc.db import Database, upgrade

    await upgrade(url)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            return await fn(session)
    finally:
        await db.close()
