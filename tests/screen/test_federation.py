"""The district's own wall screen, in a real Chromium, shows the province's figures for its
unit, marked as mirrored, and follows them live (two ioc instances, docs/feeds.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import text

from tests.conftest import DatabaseFactory, RunningServer
from tests.feeds.conftest import eventually, todays_dossier, token, two_instances

pytestmark = pytest.mark.browser

LIVE_MS = 10_000  # generous: the assertions return as soon as the page shows the figure


async def test_district_screen_shows_the_mirrored_province_values(
    page: Page, databases: DatabaseFactory, output_dir: Path
) -> None:
    async with two_instances(databases, federation_unit="689") as fed:
        await fed.subscribe("689", ["kpi"])
        await fed.province_engine_ready()
        await fed.ingest_dossiers(
            todays_dossier("SCR-1", "25195", channel=2),
            todays_dossier("SCR-2", "25198", channel=1),
        )

        async def arrived() -> bool:
            async with fed.district_db.session() as session:
                value = (
                    await session.execute(
                        text(
                            "SELECT value FROM federation_kpis WHERE unit_code = '689' AND "
                            "time_window = 'today' AND kpi_id = 'dossier_online_rate'"
                        )
                    )
                ).scalar()
            return value == 0.5

        await eventually(arrived, what="the province's values at the district")

        screen = await token(fed.district_db, "operator", "689")
        await page.goto(f"{fed.district.url}/screen?unit=689&window=today#token={screen}")
        await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
        received = page.locator('[data-kpi="dossier_received"]')
        await expect(received.locator(".value")).to_have_text("2")
        await expect(received).to_have_attribute("data-source", "upstream")
        await expect(received.locator(".source")).to_have_text("nguồn: tỉnh")
        online = page.locator('[data-kpi="dossier_online_rate"]')
        await expect(online.locator(".value")).to_have_text("50%")
        await expect(online.locator(".source")).to_have_text("nguồn: tỉnh")
        # The communes' ranking uses the mirrored figures too (Tân Đồng: nothing online).
        await expect(page.locator('#children tr[data-unit="25198"] .unit')).to_have_text(
            "Phường Tân Đồng"
        )

        # A new dossier at the province: the district's screen follows, without a reload.
        await fed.ingest_dossiers(todays_dossier("SCR-3", "25195", channel=2))
        await expect(received.locator(".value")).to_have_text("3", timeout=LIVE_MS)
        await expect(online.locator(".value")).to_have_text("66,67%", timeout=LIVE_MS)
        await expect(received.locator(".source")).to_have_text("nguồn: tỉnh")
        await page.screenshot(path=str(output_dir / "screen-federated.png"))

        await page.locator("#lang").click()
        await expect(received.locator(".source")).to_have_text("source: province")


async def test_a_mirrored_value_is_replaced_only_by_a_newer_mirrored_one(
    page: Page, screen_server: RunningServer
) -> None:
    """The page's precedence is the snapshot's: upstream wins when present."""
    await page.goto(f"{screen_server.url}/screen")
    got = await page.evaluate(
        """async () => {
        const m = await import('/screen/assets/model.js');
        const s = new m.ScreenState('689', 'today');
        s.applySnapshot({type: 'snapshot', seq: 5, kpis: {today: [
            {id: 'dossier_received', value: 7, status: 'ok', source: 'upstream'},
            {id: 'report_received', value: 1, status: 'ok'}]}, children: {today: []}});
        const kpi = (id, value, source) => ({type: 'kpi', unit: '689', window: 'today',
            kpi: {id, value, status: 'ok', ...(source ? {source} : {})}});
        const local = s.applyEvent({...kpi('dossier_received', 0), seq: 6});
        const afterLocal = s.kpis.get('dossier_received').value;
        const upstream = s.applyEvent({...kpi('dossier_received', 8, 'upstream'), seq: 7});
        const ownKpi = s.applyEvent({...kpi('report_received', 2), seq: 8});
        return [local, afterLocal, upstream, s.kpis.get('dossier_received').value,
            s.kpis.get('dossier_received').source, ownKpi, s.kpis.get('report_received').value,
            s.kpis.get('report_received').source, s.seq];
    }"""
    )
    assert got == [False, 7, True, 8, "upstream", True, 2, None, 8]
