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
        str | None,
        typer.Option(
            envvar="IOC_TOKEN",
            help="Bearer token of a role that reads the unit (operator, department_head, "
            "district or admin of its subtree), or env IOC_TOKEN. Default: the operator token "
            "`ioc demo` keeps under IOC_DATA_DIR.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option(help="Print the first snapshot and exit.")] = False,
) -> None:
    """A live table of a unit's KPIs (Vietnamese names and numbers, coloured by status, with a
    legend) and its open alerts, redrawn on every change; reconnects with backoff and
    resumes with `since`. Ctrl-C to stop."""
    from ioc.collectors import demo_token

    settings = settings_or_exit()
    if not token:
        token = demo_token(settings, "operator")
        if token is None:
            typer.echo(
                f"ioc watch needs a token that can read unit {unit}: pass --token TOKEN or set "
                "IOC_TOKEN. Create one with\n"
                f"  ioc token create --role operator --unit {unit} --name watch-{unit}\n"
                "(under `ioc demo`, the demo's operator token is used without asking)",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(
            f"using the demo's operator token ({settings.data_dir}/demo-tokens.json)", err=True
        )
    windows = window or ["today"]
    if url is None:
        base = settings.public_url.rstrip("/")
        url = "ws" + base.removeprefix("http") + "/ws"
    asyncio.run(_watch(url, token, unit, windows, once=once))


async def _watch(url: str, token: str, unit: str, windows: list[str], *, once: bool) -> None:
    from rich.console import Console
    from rich.live import Live

    from ioc.live.client import LiveClient, LiveRefused
    from ioc.live.terminal import screen

    client = LiveClient(url, token, unit, windows)
    console = Console()
    try:
        if once:
            async for message in client.messages():
                if message["type"] == "snapshot":
                    console.print(screen(client.state, windows))
                    break
            await client.close()
            return
        with Live(console=console, auto_refresh=False, screen=False) as live:
            async for message in client.messages():
                if message["type"] in ("ping", "pong"):
                    continue
                live.update(screen(client.state, windows), refresh=True)
    except LiveRefused as exc:
        typer.echo(f"ioc: refused: {exc.detail}", err=True)
        raise typer.Exit(1) from None
