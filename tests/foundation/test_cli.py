"""The command line explains itself."""

from __future__ import annotations

import subprocess
import sys

from ioc import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for command in ("serve", "demo", "db", "units", "organs", "token"):
        assert command in out.stdout
    for group, subs in {
        "db": ["upgrade", "downgrade", "current"],
        "token": ["create", "list", "revoke"],
        "units": ["load"],
    }.items():
        sub = run(group, "--help")
        assert sub.returncode == 0
        for name in subs:
            assert name in sub.stdout


def test_version() -> None:
    out = run("--version")
    assert out.stdout.strip() == f"ioc {__version__}"


def test_bad_setting_is_a_readable_error() -> None:
    import os

    env = {**os.environ, "IOC_PORT": "eighty"}
    out = subprocess.run(
        [sys.executable, "-m", "ioc", "db", "current"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 2
    assert "IOC_PORT" in out.stderr and "Traceback" not in out.stderr
