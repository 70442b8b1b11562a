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


def test_help_imports_no_database_or_web_library() -> None:
    """`ioc --help` loads no room: it took 3.7 s when it imported them all (issue 19)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ioc", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "ioc.cli" in imported
    for heavy in ("sqlalchemy", "fastapi", "asyncpg", "uvicorn", "numpy", "ioc.db", "ioc.kpis"):
        assert heavy not in imported, f"ioc --help imports {heavy}"
    assert "kpis          KPI engine: rebuild aggregates, show values." in out.stdout


def test_the_help_table_matches_the_rooms_commands() -> None:
    """`ROOM_COMMANDS` (what `ioc --help` lists without importing the rooms) says what each
    room's `register_cli` adds, with the help its command has."""
    from pathlib import Path

    import click
    import typer
    import typer.main

    import ioc
    from ioc.cli import ROOM_COMMANDS, room_command

    modules = {f"ioc.{p.parent.name}.cli" for p in Path(ioc.__file__).parent.glob("*/cli.py")}
    assert {module for module, _ in ROOM_COMMANDS.values()} == modules
    for module_name in modules:
        room = typer.Typer()
        __import__(module_name, fromlist=["register_cli"]).register_cli(room)
        group = typer.main.get_group(room)
        added = set(group.list_commands(click.Context(group)))
        assert added == {n for n, (m, _) in ROOM_COMMANDS.items() if m == module_name}
    for name, (_, summary) in ROOM_COMMANDS.items():
        assert room_command(name).get_short_help_str(limit=1000) == summary, name
