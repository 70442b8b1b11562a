"""Operations commands of the `ioc` CLI: `export`, `import`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ioc.console import progress_reporter, run_on_database


def register_cli(app: typer.Typer) -> None:
    """Add `export` and `import` to the `ioc` command line."""
    app.command("export")(export_config)
    app.command("import")(import_config)


def export_config(
    directory: Annotated[
        Path, typer.Argument(file_okay=False, help="Directory to write (created if needed).")
    ],
) -> None:
    """Export the configuration (units, organs, KPI targets, alert rules, subscriptions) as
    JSON files plus manifest.json; `ioc import` restores it. Records and events: pg_dump."""
    from ioc.ops.service import export_to

    manifest = run_on_database(lambda url: export_to(url, directory))
    for entry in manifest["files"]:
        typer.echo(f"{entry['kind']:<16} {entry['rows']:>7} rows  {directory / entry['file']}")


def import_config(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A directory from `ioc export`.")
    ],
    allow_edited: Annotated[
        bool, typer.Option(help="Accept files edited after export (skip digest checks).")
    ] = False,
) -> None:
    """Merge an `ioc export` into the database (migrating it first): rows in the files are
    created or overwritten, others are kept; all or nothing.

    Shows its progress on stderr (a bar on a terminal, plain lines otherwise)."""
    from ioc.ops.service import import_from

    with progress_reporter("import") as progress:
        counts = run_on_database(
            lambda url: import_from(url, directory, verify=not allow_edited, progress=progress)
        )
    for kind, n in counts.items():
        typer.echo(f"{kind:<16} {n:>7} rows imported")
