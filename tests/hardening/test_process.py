"""A real `ioc serve` process: SIGTERM drains in-flight requests and closes screens with
1001; SIGKILL during ingest loses nothing acknowledged; its logs never hold a token or a
citizen's name or phone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from ioc.auth import create_token
from ioc.db import Database
from ioc.db.engine import asyncpg_dsn
from tests.conftest import free_port

pytestmark = pytest.mark.slow

NAME, PHONE = "Nguyễn Thị Hồng Nhung", "0912345678"


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    url: str
    port: int
    log: Path
    db_url: str
    tokens: dict[str, str]
    run: str = field(default_factory=lambda: secrets.token_hex(4))

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def dossier(ident: str, unit: str = "689") -> dict[str, Any]:
    received = datetime.now(UTC) + timedelta(hours=7) - timedelta(minutes=5)
    return {
        "MaHoSo": ident, "MaTTHC": "1.000001", "KenhThucHien": 2, "MaDonVi": unit,
        "NgayTiepNhan": received.strftime("%Y%m%d%H%M%S"), "TrangThaiHoSo": 2,
        "ChuHoSo": NAME, "SoDienThoai": PHONE, "Email": "nhung@example.vn",
    }  # fmt: skip


async def _tokens(url: str) -> dict[str, str]:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            out = {}
            for role, unit in (("admin", None), ("collector", "70"), ("district", "689")):
                out[role], _ = await create_token(
                    session, name=f"proc-{role}", role=role, unit_code=unit
                )
            return out
    finally:
        await db.close()


async def start_serve(url: str, log: Path, tokens: dict[str, str], **env: str) -> Served:
    port = free_port()
    environ = {
        **os.environ,
        "IOC_DATABASE_URL": url,
        "IOC_PORT": str(port),
        "IOC_LOG_LEVEL": "debug",
        "IOC_WEBHOOKS_ALLOW_PRIVATE": "true",
        **env,
    }
    with log.open("ab") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ioc", "serve", stdout=sink, stderr=sink, env=environ
        )
    served = Served(proc, f"http://127.0.0.1:{port}", port, log, url, tokens)
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(300):
            if proc.returncode is not None:
                raise AssertionError(f"ioc serve exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(served.url + "/healthz")).status_code == 200:
                    return served
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError(f"ioc serve did not start: {log.read_text()[-3000:]}")


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    # The run's shared database: each test counts only the records it sent (own prefixes).
    url = database_url
    tokens = await _tokens(url)
    s = await start_serve(url, tmp_path / "serve.log", tokens)
    yield s
    if s.proc.returncode is None:
        s.proc.kill()
        await s.proc.wait()


async def stored_dossiers(url: str, prefix: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT source_id FROM dossiers WHERE source LIKE 'proc-%' AND source_id LIKE $1",
            prefix + "%",
        )
        return {r[0] for r in rows}
    finally:
        await conn.close()


async def test_sigterm_drains_requests_closes_screens_1001_and_logs_no_secrets(
    served: Served,
) -> None:
    fake = "ioc_" + secrets.token_urlsafe(32)
    async with httpx.AsyncClient(base_url=served.url, timeout=20) as http:
        # A failed authentication and an ingest with personal data and a bad record.
        bad = await http.get("/api/v1/kpis", headers={"Authorization": f"Bearer {fake}"})
        assert bad.status_code == 401
        assert fake not in bad.text
        batch = [
            dossier(f"HS-{served.run}-LOG-1"),
            {**dossier(f"HS-{served.run}-LOG-2"), "KenhThucHien": 9},
        ]
        sent = await http.post(
            "/api/v1/ingest/dossiers", json=batch, headers=served.auth("collector")
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["accepted"] == 1
        assert NAME not in sent.text and PHONE not in sent.text
    # A screen, with its token in the query string as a browser sends it.
    ws = await websockets.connect(
        f"ws://127.0.0.1:{served.port}/ws?token={served.tokens['district']}", open_timeout=10
    )
    await ws.send(json.dumps({"type": "subscribe", "unit": "689", "windows": ["today"]}))
    assert json.loads(await asyncio.wait_for(ws.recv(), timeout=20))["type"] == "snapshot"
    # An ingest in flight: headers and half the body sent, then SIGTERM, then the rest.
    body = json.dumps([dossier(f"HS-{served.run}-DRAIN-{i}") for i in range(200)]).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(
        (
            "POST /api/v1/ingest/dossiers HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {served.tokens['collector']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    await asyncio.sleep(1.0)  # let the server parse the headers and start the request
    served.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    writer.write(body[len(body) // 2 :])
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    answer = json.loads(await asyncio.wait_for(reader.readexactly(length), timeout=30))
    writer.close()
    assert answer == {"accepted": 200, "rejected": []}
    # The screen is told the server is going away.
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout=30)
    close_code = ws.close_code
    # uvicorn re-raises the signal it caught after a clean shutdown: exit by SIGTERM, not 0.
    assert await asyncio.wait_for(served.proc.wait(), timeout=30) in (
        0,
        -signal.SIGTERM,
        128 + signal.SIGTERM,
    )
    stored = await stored_dossiers(served.db_url, f"HS-{served.run}-")
    assert len(stored) == 201 and f"HS-{served.run}-DRAIN-199" in stored
    log = served.log.read_text(encoding="utf-8")
    assert "Shutting down" in log or "shutting down" in log.lower()
    for secret in [fake, *served.tokens.values()]:
        assert secret not in log
        assert secret[:20] not in log
    assert NAME not in log
    assert PHONE not in log
    assert close_code == 1001, f"screens closed with {close_code}, expected 1001 (going away)"


async def test_sigkill_during_ingest_loses_nothing_acknowledged(served: Served) -> None:
    acknowledged: set[str] = set()
    stop = asyncio.Event()

    async def sender(worker: int) -> None:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            n = 0
            while not stop.is_set():
                ids = [f"HS-{served.run}-K{worker}-{n}-{i}" for i in range(50)]
                n += 1
                try:
                    answer = await http.post(
                        "/api/v1/ingest/dossiers",
                        json=[dossier(i) for i in ids],
                        headers=served.auth("collector"),
                    )
                except httpx.HTTPError:
                    return  # the server died with this batch in flight: not acknowledged
                if answer.status_code == 200:
                    assert answer.json()["accepted"] == 50
                    acknowledged.update(ids)

    workers = [asyncio.create_task(sender(w)) for w in range(4)]
    for _ in range(300):
        if len(acknowledged) >= 1000:
            break
        await asyncio.sleep(0.05)
    served.proc.kill()
    await served.proc.wait()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*workers)
    assert len(acknowledged) >= 1000
    stored = await stored_dossiers(served.db_url, f"HS-{served.run}-")
    assert acknowledged - stored == set()
    # After a restart the same batches are accepted again as unchanged (idempotent).
    again = await start_serve(served.db_url, served.log, served.tokens)
    try:
        sample = sorted(acknowledged)[:50]
        async with httpx.AsyncClient(base_url=again.url, timeout=20) as http:
            answer = await http.post(
                "/api/v1/ingest/dossiers",
                json=[dossier(i) for i in sample],
                headers=again.auth("collector"),
            )
        assert answer.json() == {"accepted": 50, "rejected": []}
        assert await stored_dossiers(served.db_url, f"HS-{served.run}-") == stored
    finally:
        again.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(again.proc.wait(), timeout=30)
