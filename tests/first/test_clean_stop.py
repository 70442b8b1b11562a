"""`ioc serve` and `ioc demo` on the embedded PostgreSQL stop it when they are stopped: Ctrl-C
(SIGINT) or a service manager's SIGTERM leave no postgres process of their data directory and
no temporary directory behind (issue 19)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from ..conftest import embedded_postgres_left, free_port

pytestmark = pytest.mark.slow


def postgres_of(pgdata: Path) -> list[int]:
    return embedded_postgres_left(pgdata)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's 0700 temp dirs: as root, the server runs as its own user.
    path = Path(tempfile.mkdtemp(prefix="ioc-stop-"))
    path.chmod(0o755)
    yield path
    for pid in postgres_of(path / "pg"):  # a failed test must not leave it running either
        psutil.Process(pid).kill()
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_signal_stops_the_embedded_server(command: str, sig: int, data_dir: Path) -> None:
    port = free_port()
    tmp = data_dir / "tmp"  # the process's TMPDIR: nothing may be left in it
    run = data_dir / "run"  # the per-user runtime directory: the package's lock file only
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_DATA_DIR=str(data_dir), IOC_PORT=str(port), TMPDIR=str(tmp), XDG_RUNTIME_DIR=str(run)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ioc", command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready within 180 s"
            time.sleep(0.5)
        pgdata = data_dir / "pg"
        assert postgres_of(pgdata), "the embedded server should run while ioc does"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130, 128 + signal.SIGTERM), err
    assert postgres_of(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()
    assert list(tmp.iterdir()) == []
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == [
        "python_PostgresServer",
        "python_PostgresServer/.lockfile",
    ]
    assert "Traceback" not in err


def test_the_embedded_server_is_configured_before_its_first_start(data_dir: Path) -> None:
    """300 connections from the first start: no restart, so the package's handle is the
    postmaster's and its own stop works (a restart left it pointing at the old one)."""
    code = (
        "import sys; from pathlib import Path; from ioc.db.engine import start_embedded, "
        "_EMBEDDED; start_embedded(Path(sys.argv[1])); s = _EMBEDDED[0]; "
        "print(s.psql('SHOW max_connections;').split()[2], s.get_pid())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    connections, _ = done.stdout.split()
    assert connections == "300"
    log = (data_dir / "pg" / "log").read_text()
    assert log.count("database system is ready to accept connections") == 1
    assert postgres_of(data_dir / "pg") == []
