"""Progress of long commands (issue 19): a Rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from ioc.cli import app
from ioc.console import progress_reporter
from ioc.units import DEMO_FILES

from ..conftest import DatabaseFactory


def test_plain_lines_at_each_tenth_when_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with progress_reporter("kpis rebuild", console=console) as progress:
        for done in range(0, 1001):
            progress("folding records", done, 1000)
        progress("computing KPIs of units", 5, 5)
    lines = out.getvalue().splitlines()
    assert lines[0] == "kpis rebuild: folding records 0/1000 (0%)"
    assert lines[10] == "kpis rebuild: folding records 1000/1000 (100%)"
    assert lines[11:] == ["kpis rebuild: computing KPIs of units 5/5 (100%)"]


def test_unknown_totals_are_counted_without_flooding_a_log() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    with progress_reporter("simulate", console=console) as progress:
        for done in range(1, 500):
            progress("new records", done, None)
    assert out.getvalue().splitlines() == ["simulate: new records 1"]  # then every 10 s


def test_a_bar_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with progress_reporter("import", console=console) as progress:
        progress("importing", 50, 200)
        progress("importing", 200, 200)
    text = out.getvalue()
    assert "import: importing" in text and "200/200" in text and "100%" in text
    assert "━" in text  # the bar itself


async def test_units_load_reports_its_steps(databases: DatabaseFactory) -> None:
    url = await databases.create(demo_units=False)
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["units", "load", DEMO_FILES[0]], env={"IOC_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    name = Path(DEMO_FILES[0]).name
    assert re.fullmatch(r"loaded \d+ rows from .*\n", result.stdout)
    assert f"units load: loading {name} 4/4 (100%)" in result.stderr.splitlines()
