"""What every `ioc` command needs, for the rooms' `register_cli(app)`: settings that explain
a bad configuration, a database to run against, a session on it, and progress for long work.

Errors end the command with a one-line message and a non-zero exit status: 2 for a bad
configuration, 1 for a domain error (`IocError`: the message says what to do) or an
unreachable database. Never a traceback for what the user can fix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from ioc.errors import IocError
from ioc.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console
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


# `progress(step, done, total)`: what long services report (total None when unknown).
ProgressFn = Callable[[str, int, "int | None"], None]


@contextmanager
def progress_reporter(command: str, *, console: Console | None = None) -> Iterator[ProgressFn]:
    """A `progress(step, done, total)` for a long command, on stderr (stdout keeps the
    command's result): a Rich progress bar per step on a terminal; plain lines otherwise (a
    log, a pipe), one when a step starts, at each further tenth and at its end — or every
    10 s when the total is unknown."""
    from rich.console import Console

    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield _PlainLines(command, console)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, TaskID] = {}

        def report(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(f"{command}: {step}", total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield report


class _PlainLines:
    """Progress as lines, few enough for a log file."""

    def __init__(self, command: str, console: Console) -> None:
        self.command = command
        self.console = console
        self.step: str | None = None
        self.tenth = -1
        self.at = 0.0

    def __call__(self, step: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if step != self.step:
            self.step, self.tenth, self.at = step, -1, 0.0
        if total is not None:
            percent = min(100, done * 100 // total) if total else 100
            if percent // 10 <= self.tenth:
                return
            self.tenth = percent // 10
            line = f"{self.command}: {step} {done}/{total} ({percent}%)"
        else:
            if now - self.at < 10.0:
                return
            line = f"{self.command}: {step} {done}"
        self.at = now
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
