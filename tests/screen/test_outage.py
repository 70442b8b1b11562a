"""A database outage is visible on the wall (issue 22, item 6): the screen's socket to the
server stays open during an outage, so its pings once kept a green *Trực tuyến* and an
advancing *Cập nhật lúc* while nothing could be read. Real Chromium, a real server, a real
PostgreSQL cluster stopped and started."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Page, expect

from ioc.auth import create_token
from ioc.db import Database, upgrade
from ioc.db.engine import asyncpg_dsn, with_database
from tests.conftest import ServerMaker, load_demo_units
from tests.hardening.test_faults import ThrowAwayPostgres, cluster  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_the_screen_says_the_figures_are_not_current_during_an_outage(
    cluster: ThrowAwayPostgres,  # noqa: F811
    make_server: ServerMaker,
    page: Page,
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(cluster.uri))
    await conn.execute("CREATE DATABASE ioc")
    await conn.close()
    url = with_database(cluster.uri, "ioc")
    await upgrade(url)
    await load_demo_units(url)
    db = Database(url, pool_size=1)
    async with db.session() as session:
        token, _ = await create_token(session, name="wall", role="operator", unit_code="70")
    await db.close()
    server = await make_server(url=url, ws_ping_seconds=1)
    await page.goto(f"{server.url}/screen?unit=70&window=today#token={token}")
    body = page.locator("body")
    banner = page.locator("#stale-banner")
    await expect(body).to_have_attribute("data-conn", "live", timeout=30_000)
    await expect(banner).to_be_hidden()

    await cluster.stop()
    await expect(body).to_have_attribute("data-conn", "stale", timeout=15_000)
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("SỐ LIỆU KHÔNG CẬP NHẬT")
    await expect(page.locator(".conn")).to_contain_text("Số liệu không cập nhật từ")
    updated = await page.locator("#updated").text_content()
    await page.wait_for_timeout(3_000)  # pings (every second here) would have advanced it
    assert await page.locator("#updated").text_content() == updated
    await expect(body).to_have_class("stale")

    await cluster.start()
    await expect(body).to_have_attribute("data-conn", "live", timeout=30_000)
    await expect(banner).to_be_hidden()
