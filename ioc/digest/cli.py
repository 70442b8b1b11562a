"""`ioc digest`: recipients of the weekly digest, a preview to a file, a send now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ioc.console import in_session, run_on_database, settings_or_exit

digest_app = typer.Typer(
    help="The weekly digest to department heads: recipients, preview, send.",
    no_args_is_help=True,
)
recipients_app = typer.Typer(help="Who receives a unit's digest.", no_args_is_help=True)
digest_app.add_typer(recipients_app, name="recipients")


def register_cli(app: typer.Typer) -> None:
    """Add `digest` to the `ioc` command line."""
    app.add_typer(digest_app, name="digest")


@recipients_app.command("add")
def recipients_add(
    unit: Annotated[str, typer.Option(help="GSO code of the unit the digest is about.")],
    email: Annotated[str, typer.Option(help="The department head's e-mail address.")],
    name: Annotated[str | None, typer.Option(help="Their name, for the list.")] = None,
) -> None:
    """Send UNIT's weekly digest to EMAIL."""
    from ioc.digest.service import add_recipient

    added = run_on_database(
        lambda url: in_session(url, lambda s: add_recipient(s, unit, email, name))
    )
    typer.echo(f"{email} {'added to' if added else 'already receives'} the digest of {unit}")


@recipients_app.command("remove")
def recipients_remove(
    unit: Annotated[str, typer.Option(help="GSO code of the unit.")],
    email: Annotated[str, typer.Option(help="The address to remove.")],
) -> None:
    """Stop sending UNIT's digest to EMAIL."""
    from ioc.digest.service import remove_recipient

    done = run_on_database(lambda url: in_session(url, lambda s: remove_recipient(s, unit, email)))
    typer.echo(f"{email} removed" if done else f"{email} did not receive the digest of {unit}")


@recipients_app.command("list")
def recipients_list() -> None:
    """Every recipient: unit, e-mail, name (tab-separated)."""
    from ioc.digest.service import recipients

    for r in run_on_database(lambda url: in_session(url, recipients)):
        typer.echo(f"{r.unit}\t{r.email}\t{r.name or ''}")


@digest_app.command("preview")
def digest_preview(
    unit: Annotated[str, typer.Option(help="GSO code of the unit.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("digest.html"),
) -> None:
    """Write UNIT's digest of last week to an HTML file (charts inlined), sending nothing."""
    from datetime import UTC, datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from ioc.digest.content import build_digest, last_week
    from ioc.digest.render import preview_html

    settings = settings_or_exit()
    week = last_week(datetime.now(UTC))

    async def build(session: AsyncSession) -> str:
        digest = await build_digest(session, unit, week)
        return preview_html(digest, f"{settings.public_url}/screen?unit={unit}&view=scorecard")

    html = run_on_database(lambda url: in_session(url, build), settings)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"digest of {unit} for the week of {week:%d/%m/%Y} written to {out}")


@digest_app.command("send")
def digest_send(
    now: Annotated[bool, typer.Option("--now", help="Send last week's digest now.")] = False,
) -> None:
    """Send last week's digest to every recipient not yet served (each once per week)."""
    if not now:
        typer.echo("ioc: say --now to send (the server sends on its schedule, IOC_DIGEST_CRON)")
        raise typer.Exit(2)
    from datetime import UTC, datetime

    from ioc.db import Database, upgrade
    from ioc.digest.content import last_week
    from ioc.digest.service import send_week

    settings = settings_or_exit()

    async def run(url: str) -> int:
        await upgrade(url)
        db = Database(url, pool_size=2)
        try:
            return await send_week(db, settings, last_week(datetime.now(UTC)))
        finally:
            await db.close()

    sent = run_on_database(run, settings)
    typer.echo(f"{sent} digests sent")
