"""Wall-screen benchmark: how long from pushing a dossier to the figure changing on N screens.

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/screen.py [--screens 10] [--rounds 20]

Starts one `ioc` server on a fresh database (created and dropped on that server), opens N
pages of `/screen?unit=689&window=today` in one headless Chromium (Debian's, never
downloaded), then `rounds` times: POST one dossier to /api/v1/ingest/dossiers and record,
inside each page (a MutationObserver, so no polling error), when the "Hồ sơ tiếp nhận"
tile shows the new count. Prints `name: value unit` lines:

- time to first figures: page navigation → tiles filled from the websocket snapshot;
- ingest → screen latency: POST sent → tile changed, per page and round (p50, p95, max),
  beside the same for a bare Python websocket client on the same server (the part of the
  latency that is the server's: the difference is the browser's share);
- reconnect: server restarted on the same port → every page live again and caught up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.auth import create_token  # noqa: E402
from ioc.db import Database  # noqa: E402
from ioc.db.engine import with_database  # noqa: E402
from ioc.localtime import LOCAL_TZ  # noqa: E402
from tests.conftest import DatabaseFactory, RunningServer, test_settings  # noqa: E402
from tests.screen.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

# Records every change of the dossier_received tile with its wall-clock time (ms).
OBSERVE = """() => {
  window.__marks = [];
  const root = document.getElementById('tiles');
  const read = () => {
    const v = root.querySelector('[data-kpi="dossier_received"] .value');
    if (v) window.__marks.push([v.textContent, Date.now()]);
  };
  new MutationObserver(read).observe(root, {childList: true, subtree: true, characterData: true});
  read();
}"""


def dossier(i: int, now: datetime) -> dict[str, Any]:
    received = max(now - timedelta(seconds=5), now.replace(hour=0, minute=0, second=1))
    return {
        "MaHoSo": f"BENCH-SCREEN-{i}",
        "MaTTHC": "1.001612.000.00.00.H10",
        "KenhThucHien": 2,
        "MaDonVi": "25195",
        "NgayTiepNhan": received.strftime("%Y%m%d%H%M%S"),
        "TrangThaiHoSo": 2,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def wait_marks(pages: list[Page], text: str, timeout: float = 30) -> list[float]:
    """Wall-clock ms at which each page first showed `text` in the tile."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for page in pages:
            marks = await page.evaluate("() => window.__marks")
            hit = next((t for value, t in marks if value == text), None)
            found.append(hit)
        if all(f is not None for f in found):
            return [float(f) for f in found if f is not None]
        if time.monotonic() > deadline:
            raise SystemExit(f"screens never showed {text}: {found}")
        await asyncio.sleep(0.05)


async def wait_event(ws: Any, count: int) -> float:
    """Wall-clock ms at which the bare client got dossier_received = `count` for 689."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        kpi = msg.get("kpi") or {}
        if (
            msg.get("type") == "kpi"
            and msg.get("unit") == "689"
            and kpi.get("id") == "dossier_received"
            and kpi.get("value") == count
        ):
            return time.time() * 1000


async def main(screens: int, rounds: int) -> None:
    url = os.environ.get("IOC_DATABASE_URL")
    if not url:
        raise SystemExit("set IOC_DATABASE_URL to a PostgreSQL server (a database is created)")
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install -y chromium")
    factory = DatabaseFactory(with_database(url, "postgres"))
    db_url = await factory.create()
    server = RunningServer(test_settings(), db_url)
    try:
        db = Database(db_url, pool_size=1)
        async with db.session() as session:
            collector, _ = await create_token(session, name="b-c", role="collector", unit_code="70")
            screen, _ = await create_token(session, name="b-s", role="operator", unit_code="689")
        await db.close()
        await server.start()
        http = httpx.AsyncClient(base_url=server.url, timeout=30)
        auth = {"Authorization": f"Bearer {collector}"}
        res = await http.post(
            "/api/v1/ingest/dossiers", json=[dossier(0, datetime.now(LOCAL_TZ))], headers=auth
        )
        res.raise_for_status()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1920, "height": 1080})
            pages = [await context.new_page() for _ in range(screens)]
            first: list[float] = []
            for page in pages:
                started = time.perf_counter()
                await page.goto(f"{server.url}/screen?unit=689&window=today#token={screen}")
                await page.locator(
                    'body[data-conn="live"] [data-kpi="dossier_received"]'
                ).wait_for()
                first.append((time.perf_counter() - started) * 1000)
                await page.evaluate(OBSERVE)
            # The first record may still have been on its way through the KPI engine.
            await wait_marks(pages, "1")
            latencies: list[float] = []
            bare: list[float] = []
            async with websockets.connect(f"{server.ws_url}?token={screen}") as ws:
                await ws.send('{"type": "subscribe", "unit": "689", "windows": ["today"]}')
                for i in range(1, rounds + 1):
                    now = datetime.now(LOCAL_TZ)
                    sent = time.time() * 1000
                    res = await http.post(
                        "/api/v1/ingest/dossiers", json=[dossier(i, now)], headers=auth
                    )
                    res.raise_for_status()
                    bare.append(await wait_event(ws, i + 1) - sent)
                    marks = await wait_marks(pages, str(i + 1))
                    latencies.extend(m - sent for m in marks)

            # Restart on the same port: every page must come back live and caught up.
            await server.stop()
            await pages[0].locator('body[data-conn="down"]').wait_for(timeout=30_000)
            stopped = time.perf_counter()
            server.server = uvicorn.Server(server.server.config)
            await server.start()
            restarted = time.perf_counter()
            for page in pages:
                await page.locator('body[data-conn="live"]').wait_for(timeout=60_000)
            back = (time.perf_counter() - restarted) * 1000
            await browser.close()
        await http.aclose()
    finally:
        await server.stop()
        await factory.drop_all()

    print(f"screens: {screens} pages")
    print(f"rounds: {rounds} dossiers")
    print(f"screen_first_figures_p50: {statistics.median(first):.0f} ms")
    print(f"screen_first_figures_max: {max(first):.0f} ms")
    print(f"screen_ingest_to_tile_p50: {pct(latencies, 0.5):.0f} ms")
    print(f"screen_ingest_to_tile_p95: {pct(latencies, 0.95):.0f} ms")
    print(f"screen_ingest_to_tile_max: {max(latencies):.0f} ms")
    print(f"bare_ws_ingest_to_event_p50: {pct(bare, 0.5):.0f} ms")
    print(f"bare_ws_ingest_to_event_p95: {pct(bare, 0.95):.0f} ms")
    print(f"screen_down_seconds: {restarted - stopped:.1f} s")
    print(f"screen_all_live_after_restart: {back:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.screens, args.rounds))
