"""Privacy commands of the `ioc` CLI: `privacy purge`."""

from __future__ import annotations

from typing import Annotated

import typer

from ioc.console import in_session, run_on_database, settings_or_exit

privacy_app = typer.Typer(
    help="Citizens' personal data: retention purge (docs/security.md).", no_args_is_help=True
)


def register_cli(app: typer.Typer) -> None:
    """Add `privacy` to the `ioc` command line."""
    app.add_typer(privacy_app, name="privacy")


@privacy_app.command("purge")
def privacy_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be erased.")
    ] = False,
) -> None:
    """Erase personal data past retention (IOC_PERSONAL_DATA_RETENTION_DAYS,
    IOC_DEAD_LETTER_RETENTION_DAYS, IOC_ACCESS_LOG_RETENTION_DAYS); `serve` also runs it hourly."""
    from ioc.privacy.service import purge_with_settings

    settings = settings_or_exit()
    result = run_on_database(
        lambda url: in_session(url, lambda s: purge_with_settings(s, settings, dry_run=dry_run)),
        settings,
    )
    verb = "would erase" if dry_run else "erased"
    for table, n in result.counts.items():
        typer.echo(f"{table:<26} {verb} {n:>7}")
