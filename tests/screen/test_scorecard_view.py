"""The wall's scorecard view in Chromium against a real server: the 766 total, each group's
points, the children ranked, and the view following `scorecard` events as records arrive.
The test fails on any request to another host."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from ioc.auth import create_token
from ioc.db import Database
from tests.conftest import DatabaseFactory, ServerMaker
from tests.screen.conftest import refuse_other_hosts
from tests.screen.test_live import Site
from tests.screen.test_views import LIVE_MS, finished

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def site(databases: DatabaseFactory) -> Site:
    url = await databases.create()
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            tokens = [
                (await create_token(session, name=f"sc-{role}", role=role, unit_code=unit))[0]
                for role, unit in [("admin", None), ("collector", "70"), ("operator", "689"),
                                   ("operator", "70")]
            ]  # fmt: skip
    finally:
        await db.close()
    return Site(url, *tokens)


async def test_scorecard_view_shows_points_ranking_and_follows_records(
    page: Page, site: Site, make_server: ServerMaker, output_dir: Path
) -> None:
    server = await make_server(url=site.url, scorecard_live_seconds=0.3)
    outside = await refuse_other_hosts(page, server.url)
    await site.ingest(server, finished("SC-1", "25195", late=False))  # a commune of 689
    await site.received(server, 1, unit="689")
    await page.goto(f"{server.url}/screen?unit=689&view=scorecard#token={site.screen}")
    body = page.locator("body")
    await expect(body).to_have_attribute("data-view", "scorecard")
    await expect(body).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
    view = page.locator("#view-scorecard")
    await expect(view.locator("[data-group]")).to_have_count(6)
    # 2.1: the one dossier ended on time → the group's 20 points of 20.
    progress = view.locator('[data-group="2"] .sc-gpts')
    await expect(progress).to_have_text("20 / 20")
    await expect(view.locator('[data-indicator="i766_2_1"] .sc-isrc')).to_have_text("tính")
    # Group 1 awaits entered values: shown as missing, not invented.
    await expect(view.locator('[data-indicator="i766_1_1"] .sc-isrc')).to_have_text("thiếu")
    # The children of 689, ranked: the commune with the record first.
    rows = view.locator(".sc-rank tr[data-unit]")
    api = await site.call(
        server, "GET", "/api/v1/scorecards/766", site.screen, params={"unit": "689"}
    )
    assert await rows.count() == len(api["children"]) > 1
    await expect(rows.first).to_have_attribute("data-unit", "25195")
    total = view.locator(".sc-total")
    before = float(await total.get_attribute("data-total") or "nan")
    assert before == pytest.approx(api["total"])
    await page.screenshot(path=str(output_dir / "screen-scorecard.png"))

    # A late dossier in the same commune: 2.1 falls to 1/2 → 10 points, live.
    await site.ingest(server, finished("SC-2", "25195", late=True))
    await expect(progress).to_have_text("10 / 20", timeout=LIVE_MS)
    await expect(total).not_to_have_attribute("data-total", str(before))
    assert float(await total.get_attribute("data-total") or "nan") < before
    # English on L.
    await page.keyboard.press("l")
    await expect(view.locator('[data-group="2"] .sc-gname')).to_have_text("Processing progress")
    assert outside == [], f"requests left the server: {outside}"
