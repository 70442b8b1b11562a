"""Live commands of the `ioc` CLI: `watch` (a terminal screen on `/ws`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ioc.console import settings_or_exit


def register_cli(app: typer.Typer) -> None:
    """Add `watch` to the `ioc` command line."""
    app.command("watch")(watch)


def watch(
    unit: Annotated[str, typer.Option(help="GSO code of the unit to watch, e.g. 689.")],
    window: Annotated[
        list[str] | None,
        typer.Option(help="Window(s): today, 7d, month, quarter, year (repeatable)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Server websocket URL; default from IOC_PUBLIC_URL + /ws.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="IOC_TOKEN", help="Bearer token (or env IOC_TOKEN).")
    ] = None,
    once: Annotated[bool, typer.Option(help="Print the first snapshot and exit.")] = False,
) -> None:
    """Print a live table of a unit's KPIs and open alerts, redrawn on every change
    (reconnects with backoff and resumes with `since`; Ctrl-C to stop)."""
    from ioc.live.client import LiveClient, LiveRefused, render

    if not token:
        typer.echo(
            "ioc: give --token or set IOC_TOKEN (create one with `ioc token create`)", err=True
        )
        raise typer.Exit(2)
    windows = window or ["today"]
    if url is None:
        base = settings_or_exit().public_url.rstrip("/")
        url = "ws" + base.removeprefix("http") + "/ws"
    client = LiveClient(url, token, unit, windows)

    async def run() -> None:
        async for message in client.messages():
            if message["type"] in ("ping", "pong"):
                continue
            if not once:
                typer.echo("\x1b[2J\x1b[H", nl=False)  # clear the terminal, cursor home
            typer.echo(render(client.state, windows))
            if once:
                await client.close()
                return

    try:
        asyncio.run(run())
    except LiveRefused as exc:
        typer.echo(f"ioc: refused: {exc.detail}", err=True)
        raise typer.Exit(1) from None
