"""Wall views benchmark: first paint and ingest → view latency of each view, screenshots of
each view at 1920×1080 and 1366×768, and the page's JS heap after a long run of fast events.

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/screen_views.py [--rounds 10] [--minutes 10] [--rate 20]

One `ioc` server on a fresh database (created and dropped) with the demo province, its alert
rules and entered indicator values, and dossiers spread over its communes; one headless
Chromium (Debian's). Prints `name: value unit` lines:

- `<view>_first_paint_<w>x<h>`: navigation → the view drawn from live data (tiles, map
  places, charts, scorecard groups);
- `<view>_ingest_to_view_p50/p95`: POST of a dossier → the view showing its effect (the
  overview's tile, the map's label of district 689, the scorecard's total), beside
  `bare_ws_ingest_to_event_p50` of a bare websocket client on the same server (the server's
  share; the rest is the page's);
- `heap_start_kb`, `heap_end_kb`, `heap_ratio`: the overview page's used JS heap after a forced
  garbage collection (Chrome DevTools Protocol), before and after `--minutes` of `--rate`
  dossiers per second — a page left on a TV for weeks must not grow.

Screenshots go to docs/img/screen-<view>-<w>x<h>.jpg (JPEG, to keep the repository small).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.alerts import ensure_demo_rules  # noqa: E402
from ioc.auth import create_token  # noqa: E402
from ioc.db import Database  # noqa: E402
from ioc.db.engine import with_database  # noqa: E402
from ioc.localtime import LOCAL_TZ  # noqa: E402
from ioc.scorecards import ensure_demo_values  # noqa: E402
from tests.conftest import DatabaseFactory, RunningServer, test_settings  # noqa: E402
from tests.screen.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

IMG = ROOT / "docs" / "img"
SIZES = [(1920, 1080), (1366, 768)]
VIEWS = {
    "overview": '[data-kpi="dossier_received"] .value',
    "map": "#map g.place",
    "trends": "[data-chart]",
    "scorecard": "#view-scorecard [data-group]",
}
# communes of the demo province, a few per district
COMMUNES = ["25195", "25198", "25201", "25204", "25432", "25433", "25320", "25324"]


def dossier(i: int, unit: str, now: datetime, *, late: bool = False) -> dict[str, Any]:
    due = now - timedelta(minutes=5) if late else now + timedelta(days=3)
    return {
        "MaHoSo": f"BV-{i}", "MaTTHC": "1.001612.000.00.00.H10", "KenhThucHien": 2 - i % 2,
        "MaDonVi": unit, "NgayTiepNhan": (now - timedelta(hours=1)).strftime("%Y%m%d%H%M%S"),
        "NgayHenTra": due.strftime("%Y%m%d%H%M%S"), "TrangThaiHoSo": 10 if i % 3 else 4,
        "NgayKetThucXuLy": now.strftime("%Y%m%d%H%M%S") if i % 3 else "",
        "HoSoCoThanhPhanSoHoa": str(i % 2),
    }  # fmt: skip


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    def __init__(self, server: RunningServer, collector: str, screen: str) -> None:
        self.server, self.screen = server, screen
        self.http = httpx.AsyncClient(base_url=server.url, timeout=30)
        self.auth = {"Authorization": f"Bearer {collector}"}
        self.n = 0

    async def ingest(self, unit: str, *, late: bool = False) -> float:
        self.n += 1
        sent = time.time() * 1000
        res = await self.http.post(
            "/api/v1/ingest/dossiers", headers=self.auth,
            json=[dossier(self.n, unit, datetime.now(LOCAL_TZ), late=late)],
        )  # fmt: skip
        res.raise_for_status()
        return sent

    async def open(
        self, browser: Browser, view: str, size: tuple[int, int], kpi: str = ""
    ) -> tuple[Page, float]:
        context = await browser.new_context(
            viewport={"width": size[0], "height": size[1]}, locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
        )  # fmt: skip
        page = await context.new_page()
        started = time.perf_counter()
        await page.goto(f"{self.server.url}/screen?unit=70&view={view}{kpi}#token={self.screen}")
        await page.locator(f'body[data-conn="live"] {VIEWS[view]}').first.wait_for()
        return page, (time.perf_counter() - started) * 1000


async def changed(page: Page, selector: str, attribute: str | None, timeout: float = 30) -> float:
    """Wall-clock ms when `selector`'s text (or attribute) differs from what it is now."""
    read = (
        f"() => document.querySelector('{selector}')?.getAttribute('{attribute}')"
        if attribute
        else f"() => document.querySelector('{selector}')?.textContent"
    )
    before = await page.evaluate(read)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await page.evaluate(read) != before:
            return time.time() * 1000
        await asyncio.sleep(0.005)
    raise TimeoutError(f"{selector} did not change")


async def first_kpi(ws: Any) -> float:
    """Wall-clock ms when the bare client receives its next kpi event."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), 30)
        if '"type":"kpi"' in str(raw).replace(" ", ""):
            return time.time() * 1000


async def heap_kb(page: Page) -> float:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("HeapProfiler.collectGarbage")
    usage = await cdp.send("Runtime.getHeapUsage")
    return float(usage["usedSize"]) / 1024


async def main(rounds: int, minutes: float, rate: float) -> None:
    url = os.environ.get("IOC_DATABASE_URL")
    if not url:
        raise SystemExit("set IOC_DATABASE_URL to a PostgreSQL server (a database is created)")
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("no Chromium: apt-get install -y chromium")
    factory = DatabaseFactory(with_database(url, "postgres"))
    db_url = await factory.create()
    server = RunningServer(test_settings(scorecard_live_seconds=0.5), db_url)
    figures: list[str] = []
    try:
        db = Database(db_url, pool_size=1)
        async with db.session() as session:
            collector, _ = await create_token(session, name="b-c", role="collector", unit_code="70")
            screen, _ = await create_token(session, name="b-s", role="operator", unit_code="70")
        async with db.session() as session:
            await ensure_demo_rules(session)
        async with db.session() as session:
            await ensure_demo_values(session)
        await db.close()
        await server.start()
        bench = Bench(server, collector, screen)
        for i in range(40):  # a morning's dossiers over the province, a few late
            await bench.ingest(COMMUNES[i % len(COMMUNES)], late=i % 7 == 0)
        await asyncio.sleep(3)
        IMG.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for view in VIEWS:
                for size in SIZES:
                    page, first = await bench.open(browser, view, size)
                    figures.append(f"{view}_first_paint_{size[0]}x{size[1]}: {first:.0f} ms")
                    await asyncio.sleep(2)  # charts and the map settle
                    await page.screenshot(
                        path=str(IMG / f"screen-{view}-{size[0]}x{size[1]}.jpg"),
                        type="jpeg", quality=80,
                    )  # fmt: skip
                    await page.context.close()
            # ingest → view, per view (the scorecard follows its events every 0.5 s here)
            probes = {
                "overview": ('[data-kpi="dossier_received"] .value', None),
                "map": ('#map g.place[data-unit="689"] text.v', None),
                "scorecard": ("#view-scorecard .sc-total", "data-total"),
            }
            bare: list[float] = []
            async with websockets.connect(f"{server.ws_url}?token={screen}") as ws:
                await ws.send('{"type": "subscribe", "unit": "70", "windows": ["today"]}')
                for view, (selector, attribute) in probes.items():
                    page, _ = await bench.open(browser, view, SIZES[0], "&kpi=dossier_received")
                    latencies = []
                    for _ in range(rounds):
                        await asyncio.sleep(1)  # the previous round's events are all in
                        while True:  # drain what the bare client has not read yet
                            try:
                                await asyncio.wait_for(ws.recv(), 0.05)
                            except TimeoutError:
                                break
                        watch = asyncio.create_task(changed(page, selector, attribute))
                        heard = asyncio.create_task(first_kpi(ws))
                        await asyncio.sleep(0.05)
                        sent = await bench.ingest("25195", late=view == "scorecard")
                        latencies.append(await watch - sent)
                        bare.append(await heard - sent)
                    figures.append(
                        f"{view}_ingest_to_view_p50: {statistics.median(latencies):.0f} ms"
                    )
                    figures.append(f"{view}_ingest_to_view_p95: {pct(latencies, 0.95):.0f} ms")
                    await page.context.close()
            figures.append(f"bare_ws_ingest_to_event_p50: {statistics.median(bare):.0f} ms")
            # the page's heap over a long run of fast events
            page, _ = await bench.open(browser, "overview", SIZES[0])
            start = await heap_kb(page)
            end_at = time.monotonic() + minutes * 60
            sent = 0
            while time.monotonic() < end_at:
                await bench.ingest(COMMUNES[sent % len(COMMUNES)])
                sent += 1
                await asyncio.sleep(1 / rate)
            await asyncio.sleep(3)
            end = await heap_kb(page)
            figures += [
                f"heap_run: {minutes:g} min, {sent} dossiers",
                f"heap_start_kb: {start:.0f} KB",
                f"heap_end_kb: {end:.0f} KB",
                f"heap_ratio: {end / start:.2f}",
            ]
            await browser.close()
        await bench.http.aclose()
    finally:
        await server.stop()
        await factory.drop_all()
    for line in figures:
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="dossiers per second")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.minutes, args.rate))
