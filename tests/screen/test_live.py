"""The wall screen end to end in a real Chromium against real servers on one database:
tiles equal `GET /api/v1/kpis`, an ingested dossier changes them live, an alert reaches the
ticker, and after a server restart on the same port the page reconnects and catches up on
what happened while it was away."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Page, expect

from ioc.auth import create_token, revoke_token
from ioc.db import Database
from ioc.localtime import LOCAL_TZ
from tests.conftest import DatabaseFactory, RunningServer, ServerMaker

pytestmark = pytest.mark.browser

# Generous: a busy CI machine may take seconds to fold a record in; nothing waits this long
# when things work (the assertions poll and return as soon as the page shows the figure).
LIVE_MS = 10_000
RECONNECT_MS = 45_000

PERSON = "Nguyễn Thị Hồng Nhung"
PHONE = "0912345678"


def local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y%m%d%H%M%S")


def dossier(ident: str, unit: str, *, channel: int, **extra: Any) -> dict[str, Any]:
    now = datetime.now(LOCAL_TZ)
    # Received "just now", but never before today's local midnight (the window is today).
    received = max(now - timedelta(seconds=30), now.replace(hour=0, minute=0, second=1))
    return {
        "MaHoSo": ident,
        "MaTTHC": "1.001612.000.00.00.H10",
        "TenTTHC": "Đăng ký thành lập hộ kinh doanh",
        "KenhThucHien": channel,
        "MaDonVi": unit,
        "NgayTiepNhan": local(received),
        "TrangThaiHoSo": 2,
        "ChuHoSo": PERSON,
        "SoDienThoai": PHONE,
        **extra,
    }


def vi(kind: str, value: float | None) -> str:
    """The Vietnamese figure the page must show (Intl 'vi-VN' rounds half away from zero)."""
    if value is None:
        return "Chưa có dữ liệu"
    if kind == "rate":
        pct = Decimal(str(value * 100)).quantize(Decimal("0.01"), ROUND_HALF_UP).normalize()
        return f"{pct:f}".replace(".", ",") + "%"
    if kind == "hours":  # bare on the tile: the KPI's name says "(giờ)"
        hours = Decimal(str(value)).quantize(Decimal("0.1"), ROUND_HALF_UP).normalize()
        return f"{hours:f}".replace(".", ",")
    return f"{round(value):,}".replace(",", ".")


KINDS = {"ratio": "rate", "count": "count", "hours": "hours"}


class Site:
    """One database, tokens in it, and the HTTP calls a province's systems would make."""

    def __init__(self, url: str, admin: str, collector: str, screen: str, province: str) -> None:
        self.url, self.admin, self.collector = url, admin, collector
        self.screen, self.province = screen, province  # operators of 689 and of 70

    async def call(
        self, server: RunningServer, method: str, path: str, token: str, **kw: Any
    ) -> Any:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            res = await http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kw
            )
        assert res.status_code < 300, res.text
        return res.json()

    async def ingest(self, server: RunningServer, *records: dict[str, Any]) -> None:
        body = await self.call(
            server, "POST", "/api/v1/ingest/dossiers", self.collector, json=list(records)
        )
        assert body["accepted"] == len(records), body

    async def kpis(self, server: RunningServer, unit: str = "689") -> dict[str, Any]:
        params = {"unit": unit, "window": "today", "children": "true"}
        body: dict[str, Any] = await self.call(
            server, "GET", "/api/v1/kpis", self.province, params=params
        )
        return body

    async def received(
        self, server: RunningServer, expected: float, unit: str = "689"
    ) -> dict[str, Any]:
        """Wait until the KPI engine has folded the records in; return the KPIs."""
        for _ in range(300):
            body = await self.kpis(server, unit)
            values = {k["id"]: k["value"] for k in body["kpis"]}
            if values.get("dossier_received") == expected:
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"dossier_received never reached {expected}: {values}")


@pytest.fixture(scope="module")
async def site(databases: DatabaseFactory) -> Site:
    """A fresh database: these figures are this module's alone (each test its own district)."""
    url = await databases.create()
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            tokens = [
                (await create_token(session, name=f"screen-{role}", role=role, unit_code=unit))[0]
                for role, unit in [
                    ("admin", None),
                    ("collector", "70"),
                    ("operator", "689"),
                    ("operator", "70"),
                ]
            ]
    finally:
        await db.close()
    return Site(url, *tokens)


async def restart(server: RunningServer) -> None:
    """The same app again on the same port (a new process would do the same)."""
    server.server = uvicorn.Server(server.server.config)
    await server.start()


async def tile(page: Page, kpi: str) -> str:
    return (await page.locator(f'[data-kpi="{kpi}"] .value').text_content()) or ""


async def test_screen_follows_the_kpis_live_and_survives_a_restart(
    page: Page, site: Site, make_server: ServerMaker, output_dir: Path
) -> None:
    server = await make_server(url=site.url)
    await site.ingest(
        server,
        dossier("HS-1", "25195", channel=2, DaSoHoa=True),
        dossier(
            "HS-2",
            "25195",
            channel=2,
            DaSoHoa=True,
            TrangThaiHoSo=10,
            NgayHenTra=local(datetime.now(LOCAL_TZ) + timedelta(days=3)),
            NgayKetThucXuLy=local(datetime.now(LOCAL_TZ) - timedelta(seconds=10)),
        ),
        dossier(
            "HS-3",
            "25198",
            channel=1,
            NgayHenTra=local(datetime.now(LOCAL_TZ) - timedelta(seconds=5)),
        ),
    )
    rest = await site.received(server, 3)
    catalogue = {
        k["id"]: KINDS[k["unit"]]
        for k in await site.call(server, "GET", "/api/v1/kpis/catalogue", site.screen)
    }

    await page.goto(f"{server.url}/screen?unit=689&window=today#token={site.screen}")
    await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
    await expect(page.locator('[data-kpi="dossier_received"] .value')).to_have_text("3")

    # Every tile shows what the API says, formatted the Vietnamese way, with its status: the
    # plain KPIs and the headline 766 rate (the other 766 ones are the scorecard view's).
    shown = [k for k in rest["kpis"] if not k["id"].startswith("i766_") or k["id"] == "i766_2_1"]
    assert len(rest["kpis"]) == len(catalogue)
    assert await page.locator(".tile").count() == len(shown) == 17
    for kpi in shown:
        assert await tile(page, kpi["id"]) == vi(catalogue[kpi["id"]], kpi["value"]), kpi
        status = await page.locator(f'[data-kpi="{kpi["id"]}"]').get_attribute("data-status")
        assert status == kpi["status"], kpi
    # The same figures, literally: 3 received, 2 of 3 online, 1 of 1 on time, 1 overdue.
    assert [
        await tile(page, k)
        for k in [
            "dossier_received",
            "dossier_online_rate",
            "dossier_ontime_rate",
            "dossier_overdue_open",
            "dossier_digitized_rate",
        ]
    ] == ["3", "66,67%", "100%", "1", "66,67%"]
    online = page.locator('[data-kpi="dossier_online_rate"]')
    assert await online.locator(".name").text_content() == "Tỷ lệ hồ sơ trực tuyến"
    assert await online.locator(".target").text_content() == "Mục tiêu ≥ 50%"
    assert await online.locator(".status").text_content() == "Đạt"

    # Children worst first: Tân Đồng (1 overdue, nothing online, nothing digitised) on top.
    rows = page.locator("#children tbody tr")
    await expect(rows).to_have_count(8)
    assert await rows.nth(0).get_attribute("data-unit") == "25198"
    assert await rows.nth(0).locator(".unit").text_content() == "Phường Tân Đồng"
    assert [r["unit"] for r in rest["children"]].count("25198") == 1

    # An alert rule that holds at once reaches the ticker, in Vietnamese, without people.
    await site.call(
        server,
        "POST",
        "/api/v1/alert-rules",
        site.admin,
        json={
            "name": "Tỷ lệ trực tuyến dưới 90%",
            "kpi": "dossier_online_rate",
            "unit": "689",
            "window": "today",
            "op": "<",
            "threshold": 0.9,
            "severity": "critical",
        },
    )
    # One more online dossier: 4 received, 3 of 4 online — live, without a reload.
    await site.ingest(server, dossier("HS-4", "25198", channel=2))
    await expect(page.locator('[data-kpi="dossier_received"] .value')).to_have_text(
        "4", timeout=LIVE_MS
    )
    await expect(page.locator('[data-kpi="dossier_online_rate"] .value')).to_have_text(
        "75%", timeout=LIVE_MS
    )
    ticker = page.locator("#alerts .alert.sev-critical")
    await expect(ticker).to_have_count(1, timeout=LIVE_MS)
    assert await ticker.locator(".sev").text_content() == "Nghiêm trọng"
    assert "Tỷ lệ trực tuyến dưới 90%" in ((await ticker.text_content()) or "")
    # With the tile's live value, not the one the alert was last evaluated with.
    await expect(ticker).to_contain_text(
        "Tỷ lệ trực tuyến dưới 90% · Thành phố Đồng Xoài · Tỷ lệ hồ sơ trực tuyến: 75%"
    )
    seq_before = int(await page.locator("body").get_attribute("data-seq") or 0)
    assert seq_before > 0
    await page.screenshot(path=str(output_dir / "screen-live.png"))

    # The server goes away: the page says so at once and greys its figures out.
    await server.stop()
    await expect(page.locator("body")).to_have_attribute("data-conn", "down", timeout=LIVE_MS)
    await expect(page.locator("body")).to_have_class("stale")
    await expect(page.locator("#stale-banner")).to_be_visible()
    banner = (await page.locator("#stale-banner").text_content()) or ""
    assert banner.startswith("MẤT KẾT NỐI — số liệu lúc ")
    await page.screenshot(path=str(output_dir / "screen-disconnected.png"))

    # Meanwhile another replica takes a dossier (in person: 5 received, 3 of 5 online).
    other = await make_server(url=site.url)
    await site.ingest(other, dossier("HS-5", "25201", channel=1))
    await site.received(other, 5)

    # The first server comes back on the same port; the page resumes from its last seq.
    await restart(server)
    await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=RECONNECT_MS)
    await expect(page.locator('[data-kpi="dossier_received"] .value')).to_have_text(
        "5", timeout=LIVE_MS
    )
    await expect(page.locator('[data-kpi="dossier_online_rate"] .value')).to_have_text("60%")
    await expect(page.locator("#stale-banner")).to_be_hidden()
    assert int(await page.locator("body").get_attribute("data-seq") or 0) > seq_before
    assert await tile(page, "dossier_received") == vi("count", 5)

    # Never a person on the screen (the dossiers carried a name and a phone).
    text = (await page.locator("body").inner_text()) or ""
    assert PERSON not in text and PHONE not in text

    # English on request, with English number formats.
    await page.locator("#lang").click()
    await expect(page.locator('[data-kpi="dossier_online_rate"] .name')).to_have_text(
        "Online dossier rate"
    )
    await expect(page.locator("#conn-text")).to_have_text("Live")
    await page.screenshot(path=str(output_dir / "screen-english.png"))


async def test_sparklines_chart_the_series_endpoint(
    page: Page, site: Site, make_server: ServerMaker
) -> None:
    server = await make_server(url=site.url)
    # Thị xã Phước Long (688), watched with a province token: the other test keeps to 689.
    await site.ingest(server, *[dossier(f"PL-{i}", "25216", channel=2) for i in range(3)])
    await site.received(server, 3, unit="688")
    await page.goto(f"{server.url}/screen?unit=688&window=today#token={site.province}")
    await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
    # As many points as the series has values over the last 14 days, today's last.
    today = datetime.now(LOCAL_TZ).date()
    series = await site.call(
        server,
        "GET",
        "/api/v1/kpis/dossier_received/series",
        site.province,
        params={"unit": "688", "from": str(today - timedelta(days=13)), "to": str(today)},
    )
    assert series["points"][-1]["value"] == 3
    charted = sum(p["value"] is not None for p in series["points"])
    await expect(page.locator('[data-kpi="dossier_received"] svg.spark')).to_have_attribute(
        "data-points", str(charted)
    )
    assert charted == 14
    # Overdue counts have no history: their tiles carry no line.
    await expect(page.locator('[data-kpi="dossier_overdue_open"] svg.spark')).to_have_attribute(
        "data-points", "0"
    )


async def test_revoked_token_brings_back_the_login_form(
    page: Page, site: Site, make_server: ServerMaker
) -> None:
    server = await make_server(url=site.url, ws_auth_recheck_seconds=0.5)
    db = Database(site.url, pool_size=1)
    try:
        async with db.session() as session:
            secret, info = await create_token(
                session, name="TV Đồng Xoài", role="operator", unit_code="689"
            )
        await page.goto(f"{server.url}/screen?unit=689&window=today#token={secret}")
        await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
        async with db.session() as session:
            await revoke_token(session, str(info.id))
    finally:
        await db.close()
    # The server closes the socket; the page's check before reconnecting gets a 401 and
    # stops retrying: the form asks for a new token instead of hammering the server.
    await expect(page.locator("#login")).to_be_visible(timeout=RECONNECT_MS)
    assert await page.text_content("#login-error") == "Mã truy cập không hợp lệ"
    assert await page.get_attribute("body", "data-conn") == "fatal"
