"""The typed client (`ioc.live.client`) and `ioc watch`: reconnect with backoff, resume."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from ioc.db import Database
from ioc.live import Hub
from ioc.live.client import LiveClient, LiveMessage, LiveRefused
from tests.conftest import ServerMaker
from tests.live.conftest import emit, kpi_event, token_for


async def test_client_resumes_after_a_drop_without_missing_or_repeating(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    hub: Hub = server.app.state.ctx.handles.get(Hub)
    client = LiveClient(
        server.ws_url,
        await token_for(live_db, "district", "689"),
        "689",
        ["today"],
        backoff_base=0.05,
    )
    inbox: asyncio.Queue[LiveMessage] = asyncio.Queue()

    async def consume() -> None:
        async for message in client.messages():
            if message["type"] in ("snapshot", "kpi"):
                await inbox.put(message)

    task = asyncio.create_task(consume())
    try:
        assert (await asyncio.wait_for(inbox.get(), 30))["type"] == "snapshot"
        [first] = await emit(live_db, kpi_event("689", "today", "dossier_received", 1))
        assert (await asyncio.wait_for(inbox.get(), 30))["seq"] == first
        await hub.shutdown()  # every screen of this process closed with 1001
        later = await emit(
            live_db,
            kpi_event("689", "today", "dossier_received", 2),
            kpi_event("25195", "today", "report_received", 3),
        )
        got = [await asyncio.wait_for(inbox.get(), 30) for _ in later]
        assert [m["seq"] for m in got] == later
        assert [m["type"] for m in got] == ["kpi", "kpi"]
        assert client.connects == 2
        assert client.state.snapshots == 1  # resumed with since, no second snapshot
        assert client.state.seq == later[-1]
        assert client.state.kpis[("689", "today", "dossier_received")]["value"] == 2
        assert client.state.kpis[("25195", "today", "report_received")]["value"] == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_client_does_not_retry_a_refusal(live_server: ServerMaker, live_db: Database) -> None:
    server = await live_server()
    client = LiveClient(server.ws_url, await token_for(live_db, "district", "689"), "690")
    with pytest.raises(LiveRefused) as refused:
        async for _ in client.messages():
            pass
    assert refused.value.detail == "unit 690 is outside this token's unit 689"
    assert client.connects == 1
    bad = LiveClient(server.ws_url, "ioc_revoked-or-unknown", "689")
    with pytest.raises(LiveRefused) as unknown:
        async for _ in bad.messages():
            pass
    assert (unknown.value.code, unknown.value.detail) == (401, "the bearer token is unknown")


async def test_ioc_watch_prints_the_table(live_server: ServerMaker, live_db: Database) -> None:
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ioc",
        "watch",
        "--unit",
        "689",
        "--window",
        "today",
        "--window",
        "month",
        "--url",
        server.ws_url,
        "--once",
        env={**os.environ, "IOC_TOKEN": token, "COLUMNS": "160"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("Đơn vị 689   cập nhật ")
    assert "Hồ sơ tiếp nhận" in text and "Phản ánh quá hạn chưa xử lý" in text
    assert "Hôm nay" in text and "Tháng" in text and "Chú giải: ✓ đạt mục tiêu" in text
    assert "Đơn vị trực thuộc (Hôm nay)" in text
    assert "25195 │ Phường Tân Phú" in text
    assert "Cảnh báo đang mở: 0" in text
