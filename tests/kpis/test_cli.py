"""`ioc kpis rebuild` and `ioc kpis show` against a real database."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from ioc.cli import app
from ioc.db import Database
from ioc.kpis import format_value


def run(url: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["kpis", *args], env={"IOC_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return result.stdout  # progress goes to stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_rebuild_is_idempotent_and_show_prints_the_snapshot(live_db: Database) -> None:
    first = run(live_db.url, "rebuild")
    assert re.fullmatch(r"rebuilt from \d+ records; \d+ values changed\n", first)
    # Rebuilding again from the same records changes nothing that was emitted.
    assert run(live_db.url, "rebuild").endswith("; 0 values changed\n")
    body = json.loads(run(live_db.url, "show", "--unit", "689", "--window", "month", "--json"))
    assert body["unit"] == "689" and body["window"] == "month"
    assert [k["id"] for k in body["kpis"]][:2] == ["dossier_received", "dossier_online_rate"]


def test_show_prints_a_table_for_people(live_db: Database) -> None:
    """Names, Vietnamese numbers and the legend (issue 19: it printed only JSON); colour by
    status on a terminal."""
    out = run(live_db.url, "show", "--unit", "689", "--window", "month")
    body = json.loads(run(live_db.url, "show", "--unit", "689", "--window", "month", "--json"))
    assert out.startswith("Đơn vị 689 — Tháng")
    assert "Tỷ lệ hồ sơ giải quyết đúng hạn" in out and "dossier_ontime_rate" not in out
    assert "Chú giải: ✓ đạt mục tiêu   ~ gần ngưỡng" in out
    assert not out.lstrip().startswith("{")
    rate = next(k for k in body["kpis"] if k["id"] == "dossier_ontime_rate")
    if rate["value"] is not None:  # as the shared formatter writes it: `88,9%`
        shown = format_value("dossier_ontime_rate", rate["value"])
        assert "," in shown or shown.endswith("%")
        assert shown in out


def test_the_snapshot_table_is_coloured_by_status() -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from ioc.kpis import KpiSnapshot, KpiValue
    from ioc.kpis.terminal import render_snapshot

    snap = KpiSnapshot(
        unit="689",
        window="today",
        as_of=datetime(2026, 12, 3, 3, 0, tzinfo=UTC),
        kpis=[
            KpiValue(id="dossier_received", value=1234, numerator=1234, denominator=None,
                     target=None, status="no_data"),
            KpiValue(id="dossier_ontime_rate", value=0.889, numerator=8, denominator=9,
                     target=0.95, status="bad"),
            KpiValue(id="dossier_online_rate", value=0.5, numerator=1, denominator=2,
                     target=0.5, status="ok"),
        ],
    )  # fmt: skip
    console = Console(width=140, force_terminal=True, color_system="standard")
    with console.capture() as captured:
        console.print(render_snapshot(snap))
    ansi = captured.get()
    assert "Đơn vị 689 — Hôm nay" in ansi and "lúc 10:00 03/12/2026" in ansi
    assert "\x1b[1;31m88,9% ✗" in ansi  # bold red
    assert "50% ✓" in ansi and "\x1b[32m" in ansi  # green
    assert "1.234" in ansi
