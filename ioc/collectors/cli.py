"""Collector commands of the `ioc` CLI: `collect`, `simulate`, `dead-letters list|replay`."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ioc.console import in_session, progress_reporter, run_on_database, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ioc.collectors.deadletters import DeadLetter

dead_letters_app = typer.Typer(
    help="Records the collectors could not take in: list them, replay them after a fix.",
    no_args_is_help=True,
)


def register_cli(app: typer.Typer) -> None:
    """Add `collect`, `simulate` and `dead-letters` to the `ioc` command line."""
    app.add_typer(dead_letters_app, name="dead-letters")
    app.command("collect")(collect)
    app.command("simulate")(simulate)


def collect(
    once: Annotated[bool, typer.Option("--once", help="Drain every source once and exit.")] = False,
) -> None:
    """Poll the sources configured in `[[collectors]]` (IOC_CONFIG) without the API server.

    Leased per source, so it can run beside `ioc serve` replicas; each page is committed
    with its cursor, so a killed collector resumes without loss or duplicates."""
    from ioc.collectors.pull import run_collectors

    settings = settings_or_exit()
    if not settings.collectors:
        typer.echo("ioc: no [[collectors]] configured (see docs/collectors.md)", err=True)
        raise typer.Exit(2)
    stored = run_on_database(lambda url: run_collectors(url, settings, once=once), settings)
    for name, pages in stored.items():
        typer.echo(f"{name}: {pages} page(s) stored")


def simulate(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8100,
    seed: Annotated[int, typer.Option(help="Random seed (same seed → same records).")] = 7,
    rate: Annotated[float, typer.Option(help="New records per second.")] = 5.0,
    backfill_days: Annotated[float, typer.Option(help="Days of history at start.")] = 30.0,
    start: Annotated[
        str | None, typer.Option(help="Simulated 'now' at start, ISO 8601 (default: now).")
    ] = None,
    push: Annotated[
        str | None, typer.Option(help="Push to this ioc server URL instead of serving.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Collector token for --push (or IOC_SIM_TOKEN).")
    ] = None,
) -> None:
    """Simulate Bình Phước's portal, 1022 hotline, document and reporting systems (docs/api.md
    §1.5).

    Serves GET /dossiers, /procedures, /reports, /documents, /agency_reports ?since=&limit= —
    or, with --push, posts the same records to the ingest endpoints of an ioc server, showing
    its progress on stderr (the backfill, then a count of new records)."""
    import os

    import uvicorn

    from ioc.collectors.simserver import create_sim_app, push_forever
    from ioc.collectors.simulator import World

    started = datetime.fromisoformat(start) if start else None
    world = World(seed=seed, rate=rate, start=started, backfill_days=backfill_days)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in world.logs.items())
    if push:
        secret = token or os.environ.get("IOC_SIM_TOKEN")
        if not secret:
            typer.echo("ioc: --push needs --token (a collector token)", err=True)
            raise typer.Exit(2)
        typer.echo(f"simulating ({sizes}); pushing to {push}")
        with progress_reporter("simulate") as progress:
            asyncio.run(push_forever(world, push.rstrip("/"), secret, progress=progress))
        return
    typer.echo(f"simulating ({sizes}); serving http://{host}:{port}/{{dossiers,procedures,"
               "reports,documents,agency_reports}}")  # fmt: skip
    uvicorn.run(create_sim_app(world), host=host, port=port, log_config=None)


@dead_letters_app.command("list")
def dead_letters_list(
    all_: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    feed: Annotated[
        str | None, typer.Option(help="dossiers, procedures, reports, documents, agency_reports.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    payload: Annotated[
        bool,
        typer.Option(
            "--payload",
            help="Print payloads, citizens' data masked (unmasked only through the logged "
            "admin route GET /api/v1/dead-letters/{id}/payload?reason=…).",
        ),
    ] = False,
) -> None:
    """List dead-letters, oldest first: id, source, record id, reasons."""
    from ioc.collectors.deadletters import count_dead_letters, list_dead_letters, masked_payload

    async def read(session: AsyncSession) -> tuple[list[DeadLetter], int]:
        letters = await list_dead_letters(
            session, pending=not all_, source=source, feed=feed, limit=limit
        )
        total = await count_dead_letters(session, pending=not all_, source=source, feed=feed)
        return letters, total

    letters, total = run_on_database(lambda url: in_session(url, read))
    for d in letters:
        state = "replayed" if d.replayed_at else "pending"
        typer.echo(
            f"{d.id}\t{d.received_at:%Y-%m-%d %H:%M:%S}\t{d.source}\t{d.feed}\t"
            f"{d.record_id or '-'}\t{state}\tx{d.times_seen}\t{'; '.join(d.reasons)}"
        )
        if payload:
            masked = masked_payload(d)
            shown = masked if masked is not None else f"(withheld: {d.content_type}, "
            if masked is None:
                shown += f"{len(d.payload.encode('utf-8'))} bytes; may hold personal data)"
            typer.echo(f"\t{shown}")
    if len(letters) < total:
        typer.echo(
            f"{len(letters)} of {total} dead-letter(s) shown (the oldest; --limit N for more)",
            err=True,
        )
    else:
        typer.echo(f"{total} dead-letter(s)", err=True)


@dead_letters_app.command("replay")
def dead_letters_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Dead-letter ids; none = all pending.")
    ] = None,
) -> None:
    """Run dead-letters through the pipeline again (after loading a missing unit or organ,
    or fixing the source); accepted ones are marked replayed, the others keep new reasons."""
    from ioc.collectors.service import XmlLimits, replay_dead_letters

    settings = settings_or_exit()
    limits = XmlLimits(settings.xml_max_bytes, settings.xml_max_depth)
    outcomes = run_on_database(
        lambda url: in_session(url, lambda s: replay_dead_letters(s, ids or None, limits=limits)),
        settings,
    )
    for o in outcomes:
        verdict = (
            "accepted" if o.accepted else "rejected: " + json.dumps(o.errors, ensure_ascii=False)
        )
        typer.echo(f"{o.id}\t{verdict}")
    accepted = sum(o.accepted for o in outcomes)
    typer.echo(
        f"replayed {len(outcomes)}: {accepted} accepted, {len(outcomes) - accepted} still rejected"
    )
