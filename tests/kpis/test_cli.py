"""`ioc kpis rebuild` and `ioc kpis show` against a real database."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from ioc.cli import app
from ioc.db import Database


def run(url: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["kpis", *args], env={"IOC_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_rebuild_is_idempotent_and_show_prints_the_snapshot(live_db: Database) -> None:
    first = run(live_db.url, "rebuild")
    assert re.fullmatch(r"rebuilt from \d+ records; \d+ values changed\n", first)
    # Rebuilding again from the same records changes nothing that was emitted.
    assert run(live_db.url, "rebuild").endswith("; 0 values changed\n")
    body = json.loads(run(live_db.url, "show", "--unit", "689", "--window", "month"))
    assert body["unit"] == "689" and body["window"] == "month"
    assert [k["id"] for k in body["kpis"]][:2] == ["dossier_received", "dossier_online_rate"]
