"""The `ioc` command line (typer): the composition root of the commands, as `ioc.app` is of
the HTTP app. It holds the commands that run the whole server (`serve`, `demo`) and the
schema (`db`); each room adds its own through `register_cli(app)`. Every command explains
itself with --help."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ioc import (
    __version__,
    alerts,
    auth,
    collectors,
    federation,
    kpis,
    live,
    ops,
    privacy,
    scorecards,
    units,
)
from ioc.console import in_session, run_on_database, settings_or_exit
from ioc.errors import IocError
from ioc.settings import Settings

app = typer.Typer(
    name="ioc",
    help="Monitoring backend for a provincial Intelligent Operations Centre (IOC).\n\n"
    "Settings come from IOC_* environment variables or the TOML file named by IOC_CONFIG. "
    "Without IOC_DATABASE_URL, an embedded PostgreSQL is started under IOC_DATA_DIR (./var).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Database schema (Alembic migrations shipped with ioc).", no_args_is_help=True
)
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ioc {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Monitoring backend for a provincial Intelligent Operations Centre (IOC)."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (IOC_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (IOC_PORT, default 8000).")] = None,
) -> None:
    """Run everything: API, websockets, collectors, KPI engine, alerts, feed delivery."""
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = settings_or_exit(**overrides)
    _serve(settings)


def _serve(settings: Settings) -> None:
    import uvicorn

    from ioc.app import create_app
    from ioc.db import resolve_database_url
    from ioc.logs import configure

    configure(settings.log_level, settings.log_json)
    try:  # before uvicorn: a missing database is a message, not a startup traceback
        database_url = resolve_database_url(settings)
    except IocError as exc:
        typer.echo(f"ioc: {exc.detail}", err=True)
        sys.exit(1)
    app = create_app(settings, database_url=database_url)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # uvicorn closes open websockets with 1012 as it shuts down; tell screens 1001
            # (going away) first, so they reconnect at once to another replica.
            ctx = getattr(app.state, "ctx", None)
            hub = ctx.handles.find(live.Hub) if ctx is not None else None
            if hub is not None:
                await hub.shutdown()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        ws=live.WS_IMPLEMENTATION,
        ws_max_size=64 * 1024,
        # permessage-deflate costs ~2.4x CPU and ~4x memory per screen (docs/live.md)
        ws_per_message_deflate=settings.ws_compression,
    )
    server = Server(config)
    server.run()
    if not server.started:
        sys.exit(3)  # as uvicorn.run: the app failed to start


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Listen address (IOC_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (IOC_PORT, default 8000).")] = None,
) -> None:
    """`serve` with the demo province (Bình Phước, 70) loaded and its sources simulated.

    Prints the wall-screen address with the demo's operator token (read-only, province 70;
    `ioc watch` uses it too) and an admin token for the API. Both are kept under IOC_DATA_DIR
    and reused by the next run (renewed after 30 days). With IOC_HOST=0.0.0.0 the addresses
    printed are the machine's LAN address, for a TV on the network."""
    overrides: dict[str, object] = {"demo": True}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = settings_or_exit(**overrides)
    tokens = run_on_database(lambda url: collectors.prepare_demo(url, settings), settings)
    # The province's alert rules, so the wall's ticker shows real alerts (created once). Here,
    # not in the collectors' demo: the alerts room reads the collectors' source health.
    run_on_database(lambda url: in_session(url, alerts.ensure_demo_rules), settings)
    # What the province's staff would have entered (766 group 1, DTI…), marked as simulated.
    run_on_database(lambda url: in_session(url, scorecards.ensure_demo_values), settings)
    settings = collectors.start_demo_sources(settings)
    base = collectors.screen_base_url(settings)
    typer.echo("\nioc demo: Bình Phước (70), simulated portal, 1022 hotline and documents")
    typer.echo(f"  wall screen : {base}/screen?unit=70#token={tokens.operator}")
    typer.echo(f"  API docs    : {base}/docs")
    typer.echo(f"  admin token : {tokens.admin}")
    typer.echo("  terminal    : ioc watch --unit 689   (uses the demo's operator token)\n")
    _serve(settings)


@db_app.command("upgrade")
def db_upgrade(
    target: Annotated[str, typer.Argument(help="Revision; default all heads.")] = "heads",
) -> None:
    """Apply migrations (idempotent: nothing happens when already at head)."""
    from ioc.db import upgrade

    run_on_database(lambda url: upgrade(url, target))
    typer.echo(f"database upgraded to {target}")


@db_app.command("downgrade")
def db_downgrade(target: Annotated[str, typer.Argument(help="Revision, or base.")]) -> None:
    """Revert migrations down to TARGET (destroys the data of reverted tables)."""
    from ioc.db import downgrade

    run_on_database(lambda url: downgrade(url, target))
    typer.echo(f"database downgraded to {target}")


@db_app.command("current")
def db_current() -> None:
    """Show the applied and the shipped migration heads."""
    from ioc.db import current_heads, script_heads

    applied = run_on_database(current_heads)
    typer.echo(f"applied: {', '.join(sorted(applied)) or '(none)'}")
    typer.echo(f"shipped: {', '.join(sorted(script_heads()))}")


# The rooms' commands, in the order `ioc --help` lists them (commands, then groups).
ops.register_cli(app)
units.register_cli(app)
auth.register_cli(app)
privacy.register_cli(app)
kpis.register_cli(app)
scorecards.register_cli(app)
collectors.register_cli(app)
live.register_cli(app)
federation.register_cli(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
