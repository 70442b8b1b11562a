"""Unit commands of the `ioc` CLI: `units load|demo-files`, `organs load`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from ioc.console import in_session, progress_reporter, run_on_database

units_app = typer.Typer(help="Administrative units (GSO codes) and reforms.", no_args_is_help=True)
organs_app = typer.Typer(
    help="Organ ids of the e-government directory → units.", no_args_is_help=True
)


def register_cli(app: typer.Typer) -> None:
    """Add `units` and `organs` to the `ioc` command line."""
    app.add_typer(units_app, name="units")
    app.add_typer(organs_app, name="organs")


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
    """Load units (or a reform mapping) from FILE; all or nothing, bad lines are named.

    Shows its progress on stderr (a bar on a terminal, plain lines otherwise)."""
    from ioc.units.service import load_units_csv

    vf = date.fromisoformat(valid_from) if valid_from else None
    with progress_reporter("units load") as progress:
        n = run_on_database(
            lambda url: in_session(
                url, lambda s: load_units_csv(s, file, valid_from=vf, progress=progress)
            )
        )
    typer.echo(f"loaded {n} rows from {file}")


@units_app.command("demo-files")
def units_demo_files() -> None:
    """Print the paths of the demo province's unit files shipped with ioc."""
    from ioc.units.service import DEMO_FILES, DEMO_ORGANS

    for path in [*DEMO_FILES, DEMO_ORGANS]:
        typer.echo(path)


@organs_app.command("load")
def organs_load(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: organ_id,unit_code,name")
    ],
) -> None:
    """Load an organ mapping, replacing earlier rows of the same organ_id."""
    from ioc.units.service import load_organs_csv

    n = run_on_database(lambda url: in_session(url, lambda s: load_organs_csv(s, file)))
    typer.echo(f"loaded {n} organs from {file}")
