"""KPI commands of the `ioc` CLI: `kpis rebuild|show`."""

from __future__ import annotations

from typing import Annotated

import typer

from ioc.console import in_session, progress_reporter, run_on_database

kpis_app = typer.Typer(help="KPI engine: rebuild aggregates, show values.", no_args_is_help=True)


def register_cli(app: typer.Typer) -> None:
    """Add `kpis` to the `ioc` command line."""
    app.add_typer(kpis_app, name="kpis")


@kpis_app.command("rebuild")
def kpis_rebuild() -> None:
    """Recompute every KPI aggregate from the raw records; emit events for values that differ.

    Shows its progress on stderr (a bar on a terminal, plain lines otherwise)."""
    from ioc.kpis.rounds import rebuild

    with progress_reporter("kpis rebuild") as progress:
        result = run_on_database(
            lambda url: in_session(url, lambda s: rebuild(s, progress=progress))
        )
    typer.echo(f"rebuilt from {result.records} records; {result.events} values changed")


@kpis_app.command("show")
def kpis_show(
    unit: Annotated[str, typer.Option(help="GSO code of the unit.")],
    window: Annotated[str, typer.Option(help="today, 7d, month, quarter or year.")] = "today",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the snapshot as JSON (docs/api.md §4).")
    ] = False,
) -> None:
    """Print every KPI of UNIT for WINDOW: a table of Vietnamese names and values coloured by
    status, its child units' counts of statuses and a legend; --json for scripts."""
    from ioc.kpis.reads import snapshot

    snap = run_on_database(lambda url: in_session(url, lambda s: snapshot(s, unit, window)))
    if as_json:
        typer.echo(snap.model_dump_json(indent=2))
        return
    from rich.console import Console

    from ioc.kpis.terminal import render_snapshot

    Console().print(render_snapshot(snap))
