"""Two real `ioc serve` processes on one database: leased services run on exactly one of
them, and when that one is SIGKILLed the other takes every lease over and keeps serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from ioc.auth import create_token
from ioc.db import Database
from ioc.db.engine import asyncpg_dsn
from ioc.loops import lease_key
from tests.conftest import DatabaseFactory, free_port, load_demo_units

VN = timezone(timedelta(hours=7))

pytestmark = pytest.mark.slow

# The leased services `ioc serve` runs today (one replica each). A room that adds one
# adds it here; the test also fails if a process reports a lease not listed.
LEASED = {
    "alerts.evaluator",
    "alerts.sender",
    "digest.sender",
    "feeds.delivery",
    "feeds.records",
    "kpis",
    "live.retention",
    "privacy-purge",
    "scorecards.closer",
    "scorecards.publisher",
}


@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    held: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(url: str, name: str, tmp: Path) -> Replica:
    port = free_port()
    log = tmp / f"{name}.log"
    env = {
        **os.environ,
        "IOC_DATABASE_URL": url,
        "IOC_HOST": "127.0.0.1",
        "IOC_PORT": str(port),
        "IOC_MIGRATE_ON_START": "true",
        "IOC_LOG_LEVEL": "info",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ioc", "serve"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Replica(name, port, proc, log)


async def lease_gauges(http: httpx.AsyncClient, replica: Replica) -> dict[str, float]:
    text = (await http.get(f"{replica.url}/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == "ioc_service_lease_held":
            return {s.labels["service"]: s.value for s in family.samples}
    return {}


async def service_runs(http: httpx.AsyncClient, replica: Replica) -> dict[str, float]:
    text = (await http.get(f"{replica.url}/metrics")).text
    runs: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "ioc_service_runs":
            for s in family.samples:
                if s.name.endswith("_total"):
                    runs[s.labels["service"]] = runs.get(s.labels["service"], 0) + s.value
    return runs


async def lock_holders(conn: asyncpg.Connection) -> dict[str, list[int]]:
    """Lease name → pids of the processes holding its advisory lock (pg_locks, and the
    application_name leases connect with: works over TCP and Unix sockets alike)."""
    by_key = {}
    for name in LEASED:
        unsigned = lease_key(name) & 0xFFFF_FFFF_FFFF_FFFF
        by_key[(unsigned >> 32, unsigned & 0xFFFF_FFFF)] = name
    rows = await conn.fetch(
        """
        SELECT l.classid::bigint AS hi, l.objid::bigint AS lo,
               split_part(a.application_name, ' pid ', 2) AS holder_pid
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """
    )
    holders: dict[str, list[int]] = {name: [] for name in LEASED}
    for row in rows:
        name = by_key.get((row["hi"], row["lo"]))
        if name is not None:
            holders[name].append(int(row["holder_pid"] or 0))
    return holders


async def wait_ready(http: httpx.AsyncClient, replica: Replica, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.proc.poll() is not None:
            raise AssertionError(f"{replica.name} exited: {replica.log.read_text()[-3000:]}")
        try:
            if (await http.get(f"{replica.url}/healthz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{replica.name} never answered: {replica.log.read_text()[-3000:]}")


async def owners(conn: asyncpg.Connection, replicas: list[Replica]) -> dict[str, list[str]]:
    """Lease name → names of the replicas whose backends hold it."""
    pids = {r.name: r.proc.pid for r in replicas if r.proc.poll() is None}
    holders = await lock_holders(conn)
    return {
        lease: sorted(name for name, pid in pids.items() if pid in holder_pids)
        for lease, holder_pids in holders.items()
    }


async def wait_all_held(
    conn: asyncpg.Connection, replicas: list[Replica], timeout: float = 60
) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    got: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        got = await owners(conn, replicas)
        if all(len(v) == 1 for v in got.values()):
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"leases not each held once: {got}")


async def tokens(url: str) -> tuple[str, str]:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            collector, _ = await create_token(session, name="c", role="collector", unit_code="70")
            screen, _ = await create_token(session, name="s", role="operator", unit_code="70")
    finally:
        await db.close()
    return collector, screen


async def ingest_one(http: httpx.AsyncClient, replica: Replica, token: str, n: int) -> None:
    dossier = {
        "MaHoSo": f"OPS-REPLICA-{n}",
        "MaTTHC": "1.001612.000.00.00.H10",
        "KenhThucHien": 2,
        "MaDonVi": "689",
        "NgayTiepNhan": datetime.now(VN).strftime("%Y%m%d%H%M%S"),
        "TrangThaiHoSo": 4,
    }
    response = await http.post(
        f"{replica.url}/api/v1/ingest/dossiers",
        json=[dossier],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


async def received_today(ws: websockets.ClientConnection) -> float:
    """The next `dossier_received` value of unit 689 for today pushed to this screen."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
        kpi = message.get("kpi") or {}
        if (
            message["type"] == "kpi"
            and message["unit"] == "689"
            and message["window"] == "today"
            and kpi.get("id") == "dossier_received"
        ):
            return float(kpi["value"])


async def test_two_serve_processes_share_leases_and_fail_over(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    # An empty database: both replicas migrate at start, at the same time.
    url = await databases.create(migrate=False)
    replicas = [start(url, "a", tmp_path), start(url, "b", tmp_path)]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for r in replicas:
                await wait_ready(http, r)
            held = await wait_all_held(conn, replicas)
            # Exactly one holder per lease, seen from PostgreSQL and from each process.
            for _ in range(5):
                gauges = {r.name: await lease_gauges(http, r) for r in replicas}
                for lease in LEASED:
                    leaders = [n for n in ("a", "b") if gauges[n].get(lease) == 1]
                    assert leaders == held[lease], (lease, gauges, held)
                assert set(gauges["a"]) | set(gauges["b"]) == LEASED
                await asyncio.sleep(0.3)
            # The standby never ran a leased round.
            runs = {r.name: await service_runs(http, r) for r in replicas}
            for lease, (leader,) in held.items():
                standby = "b" if leader == "a" else "a"
                assert runs[standby].get(lease, 0) == 0, (lease, runs)

            # Kill the replica holding the KPI engine's lease, without any chance to clean up.
            victim = next(r for r in replicas if r.name == held["kpis"][0])
            survivor = next(r for r in replicas if r is not victim)

            # A screen on the survivor sees what is ingested through the victim (the KPI
            # engine runs there) — before the kill, and through itself after it.
            await load_demo_units(url)
            collector, screen_token = await tokens(url)
            ws_url = f"ws://127.0.0.1:{survivor.port}/ws?token={screen_token}"
            screen = await websockets.connect(ws_url)
            await screen.send(
                json.dumps({"type": "subscribe", "unit": "689", "windows": ["today"]})
            )
            assert json.loads(await asyncio.wait_for(screen.recv(), 60))["type"] == "snapshot"
            await ingest_one(http, victim, collector, 1)
            assert await received_today(screen) == 1
            before = await service_runs(http, survivor)
            killed_at = time.monotonic()
            os.kill(victim.proc.pid, signal.SIGKILL)
            victim.proc.wait(timeout=10)
            after_kill = await wait_all_held(conn, [survivor], timeout=30)
            took_over = time.monotonic() - killed_at
            assert after_kill == {lease: [survivor.name] for lease in LEASED}
            print(f"fail-over of {len(LEASED)} leases took {took_over:.2f} s")
            gauges = await lease_gauges(http, survivor)
            assert gauges == dict.fromkeys(LEASED, 1.0)

            # It keeps serving and now runs what the victim ran.
            ready = await http.get(f"{survivor.url}/readyz")
            assert ready.status_code == 200, ready.text
            for _ in range(100):
                now = await service_runs(http, survivor)
                if now.get("kpis", 0) > before.get("kpis", 0):
                    break
                await asyncio.sleep(0.2)
            assert now.get("kpis", 0) > before.get("kpis", 0)
            # The whole path works on the survivor alone: ingest → KPI engine → its screen.
            await ingest_one(http, survivor, collector, 2)
            assert await received_today(screen) == 2
            await screen.close()
    finally:
        await conn.close()
        for r in replicas:
            if r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
        for r in replicas:
            try:
                r.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
