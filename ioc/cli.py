"""The `ioc` command line (typer). Every command explains itself with --help."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ioc import __version__
from ioc.errors import IocError
from ioc.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

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
units_app = typer.Typer(help="Administrative units (GSO codes) and reforms.", no_args_is_help=True)
organs_app = typer.Typer(
    help="Organ ids of the e-government directory → units.", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens: create, list, revoke (CONTRACT §3).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(units_app, name="units")
app.add_typer(organs_app, name="organs")
app.add_typer(token_app, name="token")
privacy_app = typer.Typer(
    help="Citizens' personal data: retention purge (docs/security.md).", no_args_is_help=True
)
app.add_typer(privacy_app, name="privacy")
kpis_app = typer.Typer(help="KPI engine: rebuild aggregates, show values.", no_args_is_help=True)
app.add_typer(kpis_app, name="kpis")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"ioc: {exc.detail}", err=True)
        raise typer.Exit(2) from None


def _run(coro_fn: Callable[[str], Coroutine[Any, Any, T]], settings: Settings | None = None) -> T:
    """Run `coro_fn(database_url)` against the configured (or embedded) database."""
    from ioc.db.engine import resolve_database_url

    settings = settings or _settings()
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
    settings = _settings(**overrides)
    _serve(settings)


def _serve(settings: Settings) -> None:
    import uvicorn

    from ioc.api import create_app
    from ioc.live import WS_IMPLEMENTATION
    from ioc.logs import configure

    configure(settings.log_level, settings.log_json)
    app = create_app(settings)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # uvicorn closes open websockets with 1012 as it shuts down; tell screens 1001
            # (going away) first, so they reconnect at once to another replica.
            ctx = getattr(app.state, "ctx", None)
            hub = ctx.rooms.get("live") if ctx is not None else None
            if hub is not None:
                await hub.shutdown()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        ws=WS_IMPLEMENTATION,
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

    Prints an admin token and the wall-screen address before starting."""
    overrides: dict[str, object] = {"demo": True}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = _settings(**overrides)
    from ioc.demo import prepare_demo

    token = _run(lambda url: prepare_demo(url, settings), settings)
    from ioc.demo import start_demo_sources

    settings = start_demo_sources(settings)
    typer.echo("\nioc demo: Bình Phước (70), simulated portal, 1022 hotline and documents")
    typer.echo(f"  admin token : {token}")
    typer.echo(f"  API docs    : {settings.public_url}/docs")
    typer.echo(f"  wall screen : {settings.public_url}/screen?unit=70#token={token}\n")
    _serve(settings)


@db_app.command("upgrade")
def db_upgrade(
    target: Annotated[str, typer.Argument(help="Revision; default all heads.")] = "heads",
) -> None:
    """Apply migrations (idempotent: nothing happens when already at head)."""
    from ioc.db import upgrade

    _run(lambda url: upgrade(url, target))
    typer.echo(f"database upgraded to {target}")


@db_app.command("downgrade")
def db_downgrade(target: Annotated[str, typer.Argument(help="Revision, or base.")]) -> None:
    """Revert migrations down to TARGET (destroys the data of reverted tables)."""
    from ioc.db import downgrade

    _run(lambda url: downgrade(url, target))
    typer.echo(f"database downgraded to {target}")


@db_app.command("current")
def db_current() -> None:
    """Show the applied and the shipped migration heads."""
    from ioc.db import current_heads, script_heads

    applied = _run(current_heads)
    typer.echo(f"applied: {', '.join(sorted(applied)) or '(none)'}")
    typer.echo(f"shipped: {', '.join(sorted(script_heads()))}")


async def _with_session(url: str, fn: Callable[..., Awaitable[T]]) -> T:
    from ioc.db import Database, upgrade

    await upgrade(url)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            return await fn(session)
    finally:
        await db.close()


@units_app.command("load")
def units_load(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="CSV: code,name,level,parent_code,lat,lon — "
            "or a reform mapping old_code,new_code,is_default.",
        ),
    ],
    valid_from: Annotated[
        str | None,
        typer.Option(
            help="Date (YYYY-MM-DD) the units or the reform take effect; a mapping defaults "
            "to 2025-07-01."
        ),
    ] = None,
) -> None:
    """Load units (or a reform mapping) from FILE; all or nothing, bad lines are named."""
    from ioc.units import load_units_csv

    vf = date.fromisoformat(valid_from) if valid_from else None
    n = _run(lambda url: _with_session(url, lambda s: load_units_csv(s, file, valid_from=vf)))
    typer.echo(f"loaded {n} rows from {file}")


@units_app.command("demo-files")
def units_demo_files() -> None:
    """Print the paths of the demo province's unit files shipped with ioc."""
    from ioc.units import DEMO_FILES, DEMO_ORGANS

    for path in [*DEMO_FILES, DEMO_ORGANS]:
        typer.echo(path)


@organs_app.command("load")
def organs_load(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: organ_id,unit_code,name")
    ],
) -> None:
    """Load an organ mapping, replacing earlier rows of the same organ_id."""
    from ioc.units import load_organs_csv

    n = _run(lambda url: _with_session(url, lambda s: load_organs_csv(s, file)))
    typer.echo(f"loaded {n} organs from {file}")


@token_app.command("create")
def token_create(
    role: Annotated[
        str, typer.Option(help="admin, operator, department_head, district or collector.")
    ],
    name: Annotated[str, typer.Option(help="Who or what uses the token, e.g. 'screen-689'.")],
    unit: Annotated[
        str | None,
        typer.Option(
            help="GSO code of the unit whose subtree the token sees (required except for admin)."
        ),
    ] = None,
    expires_days: Annotated[int | None, typer.Option(help="Expire after N days.")] = None,
) -> None:
    """Create a token. The token is printed once, alone on the last line; only a hash is kept."""
    from ioc.auth import create_token

    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    secret, info = _run(
        lambda url: _with_session(
            url, lambda s: create_token(s, name=name, role=role, unit_code=unit, expires_at=expires)
        )
    )
    typer.echo(
        f"created token {info.id} ({info.role}, unit {info.unit_code or 'all'}); "
        "store it now, it is not shown again:",
        err=True,
    )
    typer.echo(secret)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    from ioc.auth import list_tokens

    tokens = _run(lambda url: _with_session(url, list_tokens))
    for t in tokens:
        state = (
            "revoked"
            if t.revoked_at
            else ("expired" if t.expires_at and t.expires_at < datetime.now(UTC) else "active")
        )
        typer.echo(
            f"{t.id}  {t.prefix}…  {t.role:<16} {t.unit_code or 'all':<6} {state:<8} {t.name}"
        )


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="Token id or its printed prefix.")],
) -> None:
    """Revoke a token; it stops working at once, on open websockets too."""
    from ioc.auth import revoke_token

    info = _run(lambda url: _with_session(url, lambda s: revoke_token(s, token)))
    typer.echo(f"revoked {info.id} ({info.name})")


@app.command("export")
def export_config(
    directory: Annotated[
        Path, typer.Argument(file_okay=False, help="Directory to write (created if needed).")
    ],
) -> None:
    """Export the configuration (units, organs, KPI targets, alert rules, subscriptions) as
    JSON files plus manifest.json; `ioc import` restores it. Records and events: pg_dump."""
    from ioc.ops import export_to

    manifest = _run(lambda url: export_to(url, directory))
    for entry in manifest["files"]:
        typer.echo(f"{entry['kind']:<16} {entry['rows']:>7} rows  {directory / entry['file']}")


@app.command("import")
def import_config(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A directory from `ioc export`.")
    ],
    allow_edited: Annotated[
        bool, typer.Option(help="Accept files edited after export (skip digest checks).")
    ] = False,
) -> None:
    """Merge an `ioc export` into the database (migrating it first): rows in the files are
    created or overwritten, others are kept; all or nothing."""
    from ioc.ops import import_from

    counts = _run(lambda url: import_from(url, directory, verify=not allow_edited))
    for kind, n in counts.items():
        typer.echo(f"{kind:<16} {n:>7} rows imported")


@privacy_app.command("purge")
def privacy_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be erased.")
    ] = False,
) -> None:
    """Erase personal data past retention (IOC_PERSONAL_DATA_RETENTION_DAYS,
    IOC_DEAD_LETTER_RETENTION_DAYS, IOC_ACCESS_LOG_RETENTION_DAYS); `serve` also runs it hourly."""
    from ioc.privacy.service import purge_with_settings

    settings = _settings()
    result = _run(
        lambda url: _with_session(url, lambda s: purge_with_settings(s, settings, dry_run=dry_run)),
        settings,
    )
    verb = "would erase" if dry_run else "erased"
    for table, n in result.counts.items():
        typer.echo(f"{table:<26} {verb} {n:>7}")


@kpis_app.command("rebuild")
def kpis_rebuild() -> None:
    """Recompute every KPI aggregate from the raw records; emit events for values that differ."""
    from ioc.kpis import rebuild

    result = _run(lambda url: _with_session(url, rebuild))
    typer.echo(f"rebuilt from {result.records} records; {result.events} values changed")


@kpis_app.command("show")
def kpis_show(
    unit: Annotated[str, typer.Option(help="GSO code of the unit.")],
    window: Annotated[str, typer.Option(help="today, 7d, month, quarter or year.")] = "today",
) -> None:
    """Print every KPI of UNIT for WINDOW as JSON (CONTRACT §4)."""
    from ioc.kpis import snapshot

    snap = _run(lambda url: _with_session(url, lambda s: snapshot(s, unit, window)))
    typer.echo(snap.model_dump_json(indent=2))


def _register_rooms() -> None:
    from ioc.collectors.cli import register as register_collectors
    from ioc.feeds.cli import register as register_feeds

    register_collectors(app)
    register_feeds(app)


_register_rooms()


@app.command()
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
        base = _settings().public_url.rstrip("/")
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
