"""The `ioc` command line (typer): the composition root of the commands, as `ioc.app` is of
the HTTP app. It holds the commands that run the whole server (`serve`, `demo`) and the
schema (`db`); each room adds its own through `register_cli(app)`. Every command explains
itself with --help."""

from __future__ import annotations

import importlib
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer import _click as click  # the click that typer's own classes are built on
from typer.core import TyperGroup

from ioc import __version__
from ioc.console import in_session, run_on_database, settings_or_exit
from ioc.errors import IocError

if TYPE_CHECKING:
    from ioc.settings import Settings

# The rooms' commands, in the order `ioc --help` lists them: name → (the module whose
# `register_cli(app)` adds it, its help's first sentence as `ioc --help` shows it).
# tests/foundation/test_cli.py checks this table against the commands themselves.
ROOM_COMMANDS: dict[str, tuple[str, str]] = {
    "export": (
        "ioc.ops.cli",
        "Export the configuration (units, organs, KPI targets, alert rules, subscriptions) as "
        "JSON files plus manifest.json; `ioc import` restores it.",
    ),
    "import": (
        "ioc.ops.cli",
        "Merge an `ioc export` into the database (migrating it first): rows in the files are "
        "created or overwritten, others are kept; all or nothing.",
    ),
    "collect": (
        "ioc.collectors.cli",
        "Poll the sources configured in `[[collectors]]` (IOC_CONFIG) without the API server.",
    ),
    "simulate": (
        "ioc.collectors.cli",
        "Simulate Bình Phước's portal, 1022 hotline, document and reporting systems "
        "(docs/api.md §1.5).",
    ),
    "watch": (
        "ioc.live.cli",
        "A live table of a unit's KPIs (Vietnamese names and numbers, coloured by status, "
        "with a legend) and its open alerts, redrawn on every change; reconnects with backoff "
        "and resumes with `since`.",
    ),
    "units": ("ioc.units.cli", "Administrative units (GSO codes) and reforms."),
    "organs": ("ioc.units.cli", "Organ ids of the e-government directory → units."),
    "token": ("ioc.auth.cli", "API tokens: create, list, revoke (docs/api.md §3)."),
    "privacy": ("ioc.privacy.cli", "Citizens' personal data: retention purge (docs/security.md)."),
    "kpis": ("ioc.kpis.cli", "KPI engine: rebuild aggregates, show values."),
    "scorecards": (
        "ioc.scorecards.cli",
        "The Decision 766 scorecard: show a unit's, recompute a closed period.",
    ),
    "digest": (
        "ioc.digest.cli",
        "The weekly digest to department heads: recipients, preview, send.",
    ),
    "indicators": (
        "ioc.scorecards.cli",
        "Indicators ioc cannot compute (766 group 1, DTI, PAR Index, SIPAS, PCI/DDCI): load "
        "their values.",
    ),
    "dead-letters": (
        "ioc.collectors.cli",
        "Records the collectors could not take in: list them, replay them after a fix.",
    ),
    "federation": (
        "ioc.federation.cli",
        "This ioc mirroring an upstream ioc's feed (docs/feeds.md, two-instance set-up).",
    ),
}


def room_command(name: str) -> click.Command:
    """Import the room that owns command `name` and build that command."""
    module = importlib.import_module(ROOM_COMMANDS[name][0])
    room = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    module.register_cli(room)
    group = typer.main.get_group(room)
    command = group.get_command(click.Context(group), name)
    assert command is not None, f"{module.__name__}.register_cli does not add {name!r}"
    return command


class _Commands(TyperGroup):
    """The `ioc` group: its own commands, then the rooms' commands, loaded on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *ROOM_COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in ROOM_COMMANDS:
            return room_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        for name in names:
            if name in ROOM_COMMANDS:
                rows.append(
                    (name, click.utils.make_default_short_help(ROOM_COMMANDS[name][1], limit))
                )
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=_Commands,
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

    from ioc import live
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
    from ioc import alerts, collectors, scorecards

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
    typer.echo(f"  console     : {base}/console   (sign in with the admin token)")
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


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """The `ioc` command. SIGTERM and SIGHUP end it as Ctrl-C does, through the interpreter's
    exit: its exit hooks stop the embedded PostgreSQL it started (the default action of those
    signals would kill the process and leave the server running). `serve` lets uvicorn
    handle them while it runs, which then re-raises them here."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:  # not when ignored (nohup)
            signal.signal(signum, _exit_on_signal)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
