"""Scorecard commands of the `ioc` CLI: `scorecards show|recompute|close`, `indicators load`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from ioc.console import in_session, run_on_database

scorecards_app = typer.Typer(
    help="The Decision 766 scorecard: show a unit's, recompute a closed period.",
    no_args_is_help=True,
)
indicators_app = typer.Typer(
    help="Indicators ioc cannot compute (766 group 1, DTI, PAR Index, SIPAS, PCI/DDCI): load "
    "their values.",
    no_args_is_help=True,
)
CSV_COLUMNS = ("indicator", "unit", "period", "value", "note")


def register_cli(app: typer.Typer) -> None:
    """Add `scorecards` and `indicators` to the `ioc` command line."""
    app.add_typer(scorecards_app, name="scorecards")
    app.add_typer(indicators_app, name="indicators")


@scorecards_app.command("show")
def scorecards_show(
    unit: Annotated[str, typer.Option(help="GSO code of the unit.")],
    period: Annotated[
        str, typer.Option(help="2026-11, 2026-Q4, 2026, or the current month|quarter|year.")
    ] = "month",
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON, for scripts.")] = False,
) -> None:
    """Print UNIT's 766 scorecard for PERIOD: points per group, total, children ranked."""
    from rich.console import Console
    from rich.table import Table

    from ioc.scorecards.service import read_scorecard

    card = run_on_database(lambda url: in_session(url, lambda s: read_scorecard(s, unit, period)))
    if as_json:
        typer.echo(card.model_dump_json(by_alias=True, indent=2))
        return
    console = Console()
    state = "đã chốt" if card.closed else "đang diễn ra"
    console.print(
        f"[bold]Chỉ số 766 — {card.name} ({card.unit}), kỳ {card.period} ({state}): "
        f"{_points(card.total)} / {_points(card.max)} điểm[/bold]"
    )
    table = Table("Nhóm / chỉ số", "Giá trị", "Ngưỡng", "Điểm", "Nguồn")
    for group in card.groups:
        table.add_row(f"[bold]{group.name}[/bold]", "", "", f"{_points(group.score)} / "
                      f"{_points(group.max)}", "")  # fmt: skip
        for ind in group.indicators:
            value = "—" if ind.value is None else f"{ind.value * 100:.1f} %".replace(".", ",")
            score = "—" if ind.score is None else f"{_points(ind.score)} / {_points(ind.points)}"
            table.add_row(
                f"  {ind.name}",
                value,
                f"{ind.threshold * 100:.0f} %",
                score,
                _SOURCES[ind.source],
            )
    console.print(table)
    if card.children:
        ranking = Table("Hạng", "Đơn vị", "Điểm")
        for child in card.children:
            ranking.add_row(str(child.rank), f"{child.name} ({child.unit})",
                            f"{_points(child.total)} / {_points(child.max)}")  # fmt: skip
        console.print(ranking)
    console.print(
        "Nguồn: tính = tính từ hồ sơ; nhập = giá trị nhập (ioc indicators load); thiếu = chưa "
        "có giá trị (0 điểm); không áp dụng = chỉ tiêu cấp tỉnh (đủ điểm)."
    )


_SOURCES = {
    "computed": "tính",
    "entered": "[cyan]nhập[/cyan]",
    "missing": "[red]thiếu[/red]",
    "not_applicable": "không áp dụng",
}


def _points(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


@scorecards_app.command("recompute")
def scorecards_recompute(
    unit: Annotated[str, typer.Option(help="GSO code of the unit.")],
    period: Annotated[str, typer.Option(help="A closed period: 2026-11, 2026-Q3, 2025.")],
) -> None:
    """Compute a closed period's scorecard again from today's records, store it as a new
    version and print what changed. A closed score moves only this way."""
    from ioc.scorecards.service import recompute

    out = run_on_database(
        lambda url: in_session(url, lambda s: recompute(s, unit, period, by="cli"))
    )
    before = "—" if out.previous_total is None else _points(out.previous_total)
    typer.echo(f"{out.unit} {out.period}: {before} → {_points(out.total)} (version {out.version})")
    for change in out.changed:
        typer.echo(
            f"  {change['indicator']}: value {change['value'][0]} → {change['value'][1]}, "
            f"score {change['score'][0]} → {change['score'][1]}"
        )
    if not out.changed:
        typer.echo("  nothing changed")


@indicators_app.command("load")
def indicators_load(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV with columns indicator,unit,period,value,note."
        ),
    ],
    by: Annotated[str, typer.Option(help="Who entered these values (kept with each).")] = "cli",
) -> None:
    """Load entered indicator values from a CSV file, all or nothing: a bad line is reported
    with its number and nothing is loaded. `GET /api/v1/indicators` lists the indicators."""
    from pydantic import ValidationError
    from sqlalchemy.ext.asyncio import AsyncSession

    from ioc.errors import Invalid, IocError
    from ioc.scorecards.models import IndicatorValueIn
    from ioc.scorecards.service import enter_value

    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_COLUMNS[:4] if c not in (reader.fieldnames or [])]
        if missing:
            typer.echo(f"ioc: {file.name} lacks the columns {', '.join(missing)}", err=True)
            raise typer.Exit(2)
        rows: list[tuple[int, IndicatorValueIn]] = []
        problems: list[str] = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append(
                    (
                        line,
                        IndicatorValueIn(
                            indicator=(row["indicator"] or "").strip(),
                            unit=(row["unit"] or "").strip(),
                            period=(row["period"] or "").strip(),
                            value=float((row["value"] or "").strip().replace(",", ".")),
                            note=(row.get("note") or "").strip() or None,
                        ),
                    )
                )
            except (ValueError, ValidationError) as exc:
                problems.append(f"line {line}: {str(exc).splitlines()[0]}")
    if problems:
        typer.echo(f"ioc: nothing loaded from {file.name}:", err=True)
        for problem in problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1)

    async def load_all(session: AsyncSession) -> int:
        for line, body in rows:
            try:
                await enter_value(session, body, by=by, source=f"file:{file.name}")
            except IocError as exc:
                raise Invalid(f"line {line}: {exc.detail}; nothing loaded") from exc
        return len(rows)

    loaded = run_on_database(lambda url: in_session(url, load_all))
    typer.echo(f"loaded {loaded} values from {file.name}")
