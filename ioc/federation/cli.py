"""Federation commands of the `ioc` CLI: `federation seed`."""

from __future__ import annotations

from typing import Annotated

import typer

from ioc.console import in_session, run_on_database, settings_or_exit

federation_app = typer.Typer(
    help="This ioc mirroring an upstream ioc's feed (docs/feeds.md, two-instance set-up).",
    no_args_is_help=True,
)


def register_cli(app: typer.Typer) -> None:
    """Add `federation` to the `ioc` command line."""
    app.add_typer(federation_app, name="federation")


@federation_app.command("seed")
def seed(
    upstream: Annotated[
        str, typer.Option(help="The upstream ioc's address, e.g. https://ioc.binhphuoc.gov.vn.")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="IOC_UPSTREAM_TOKEN",
            help="A token of the upstream for the unit (or env IOC_UPSTREAM_TOKEN).",
        ),
    ] = None,
    unit: Annotated[
        str | None, typer.Option(help="The unit to mirror; default IOC_FEDERATION_UNIT.")
    ] = None,
) -> None:
    """Fill in the upstream's current KPI values of the unit and its children, every window,
    where this instance has none yet (the feed then keeps them up to date: it carries only
    changes). Run once after subscribing; running it again changes nothing already there."""
    from ioc.federation.service import fetch_upstream
    from ioc.federation.service import seed as seed_values

    settings = settings_or_exit()
    unit = unit or settings.federation_unit
    if not token or not unit:
        typer.echo(
            "ioc: give --token (or IOC_UPSTREAM_TOKEN) and --unit (or IOC_FEDERATION_UNIT)",
            err=True,
        )
        raise typer.Exit(2)
    upstream_token, code = token, unit

    async def run(url: str) -> int:
        snapshots = await fetch_upstream(upstream, upstream_token, code)
        return await in_session(
            url,
            lambda s: seed_values(
                s,
                snapshots,
                mirror=settings.federation_kpis == "upstream",
                scope_unit=settings.federation_unit,
            ),
        )

    n = run_on_database(run, settings)
    typer.echo(f"seeded {n} upstream value(s) of {code} and its children from {upstream}")
