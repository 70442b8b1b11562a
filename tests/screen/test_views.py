"""The wall's views in a real Chromium against a real server (issue 20): the map shows every
child of the demo province at its place with its status colour and follows an ingested
record live; the trends chart has a date axis, a value axis in the KPI's unit and a target
line, and moves when a value changes; the playlist cycles; keys switch views (the scorecard
view: test_scorecard_view.py). Every test fails on any request to another host."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from ioc.alerts import DEMO_RULES, ensure_demo_rules
from ioc.auth import create_token
from ioc.db import Database
from ioc.localtime import LOCAL_TZ
from tests.conftest import DatabaseFactory, RunningServer, ServerMaker
from tests.screen.conftest import refuse_other_hosts
from tests.screen.test_live import Site, dossier, local

pytestmark = pytest.mark.browser

LIVE_MS = 15_000
DISTRICTS_OF_70 = 11  # units-70-binhphuoc-2024.csv


@pytest.fixture(scope="module")
async def site(databases: DatabaseFactory) -> Site:
    url = await databases.create()
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            tokens = [
                (await create_token(session, name=f"wall-{role}", role=role, unit_code=unit))[0]
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


@pytest.fixture
async def server(site: Site, make_server: ServerMaker) -> RunningServer:
    return await make_server(url=site.url)


@pytest.fixture
async def offline(page: Page, server: RunningServer) -> AsyncIterator[list[str]]:
    """Every request to a host other than the server's is aborted and recorded; the test
    fails if there was one (a government network has no internet)."""
    outside = await refuse_other_hosts(page, server.url)
    yield outside
    assert outside == [], f"requests left the server: {outside}"


def finished(ident: str, unit: str, *, late: bool) -> dict[str, object]:
    """A dossier finished 10 s ago, due in 3 days (on time) or 5 s before it finished."""
    now = datetime.now(LOCAL_TZ)
    due = now - timedelta(seconds=15) if late else now + timedelta(days=3)
    return dossier(
        ident,
        unit,
        channel=2,
        TrangThaiHoSo=10,
        NgayHenTra=local(due),
        NgayKetThucXuLy=local(now - timedelta(seconds=10)),
    )


async def test_map_shows_every_child_with_its_status_and_follows_a_record_live(
    page: Page, site: Site, server: RunningServer, offline: list[str], output_dir: Path
) -> None:
    await site.ingest(server, finished("MAP-1", "25195", late=False))  # a commune of 689
    await site.received(server, 1, unit="689")
    url = f"{server.url}/screen?unit=70&view=map&kpi=dossier_ontime_rate#token={site.province}"
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-view", "map")
    await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
    places = page.locator("#map g.place")
    await expect(places).to_have_count(DISTRICTS_OF_70)
    # Every child of the province is drawn (positions from the vietnamadminunits dataset),
    # none is listed as unplaced.
    units = await site.call(server, "GET", "/api/v1/units/70", site.province)
    codes = sorted(c["code"] for c in units["children"])
    assert len(codes) == DISTRICTS_OF_70
    drawn = sorted([await p.get_attribute("data-unit") or "" for p in await places.all()])
    assert drawn == codes
    assert await page.locator("#map-unplaced li[data-unit]").count() == 0
    # The colour of each is the status the API gives the child for that KPI.
    rest = await site.kpis(server, unit="70")
    figures = {c["unit"]: {k["id"]: k for k in c["kpis"]} for c in rest["children"]}
    expected = {}
    for code in codes:
        kpi = figures.get(code, {}).get("dossier_ontime_rate")
        expected[code] = kpi["status"] if kpi and kpi["value"] is not None else "no_data"
    assert expected["689"] == "ok", rest
    for code, status in expected.items():
        await expect(page.locator(f'#map g.place[data-unit="{code}"]')).to_have_attribute(
            "data-status", status
        )
    await expect(page.locator('#map g.place[data-unit="689"] text.v')).to_have_text("100%")
    colour = await page.locator('#map g.place[data-unit="689"] circle').evaluate(
        "c => getComputedStyle(c).fill"
    )
    assert colour == "rgb(46, 204, 113)"  # --ok
    await page.screenshot(path=str(output_dir / "screen-map.png"))

    # A late dossier in another commune of 689 turns the district red, live.
    await site.ingest(server, finished("MAP-2", "25198", late=True))
    place = page.locator('#map g.place[data-unit="689"]')
    await expect(place).to_have_attribute("data-status", "bad", timeout=LIVE_MS)
    await expect(place.locator("text.v")).to_have_text("50%")
    colour = await place.locator("circle").evaluate("c => getComputedStyle(c).fill")
    assert colour == "rgb(255, 92, 92)"  # --bad


async def count(site: Site, server: RunningServer) -> float:
    body = await site.kpis(server, unit="689")
    return float(next(k["value"] for k in body["kpis"] if k["id"] == "dossier_received"))


async def online_rate(site: Site, server: RunningServer) -> float:
    body = await site.kpis(server, unit="689")
    return float(next(k["value"] for k in body["kpis"] if k["id"] == "dossier_online_rate"))


async def test_trends_chart_has_dates_units_and_target_and_moves(
    page: Page, site: Site, server: RunningServer, offline: list[str], output_dir: Path
) -> None:
    before = await count(site, server)
    await site.ingest(server, dossier("TR-1", "25201", channel=2))
    await site.received(server, before + 1)
    received = await online_rate(site, server)
    await page.goto(f"{server.url}/screen?unit=689&view=trends#token={site.screen}")
    await expect(page.locator("body")).to_have_attribute("data-view", "trends")
    chart = page.locator('[data-chart="dossier_online_rate"]')
    await expect(chart).to_have_attribute("data-points", "30", timeout=LIVE_MS)
    await expect(chart.locator("canvas")).to_have_count(1)
    # Dates on the time axis (dd/mm in Asia/Ho_Chi_Minh), today's among the labels' range.
    x_ticks = (await chart.get_attribute("data-x-ticks") or "").split("|")
    assert len(x_ticks) >= 2 and all(re.fullmatch(r"\d\d/\d\d", x) for x in x_ticks), x_ticks
    # The value axis in percent; the target line at the catalogue's 50 %.
    y_ticks = (await chart.get_attribute("data-y-ticks") or "").split("|")
    assert len(y_ticks) >= 2 and all(y.endswith("%") for y in y_ticks), y_ticks
    assert await chart.get_attribute("data-target") == "0.5"
    assert float(await chart.get_attribute("data-last") or "nan") == pytest.approx(received)
    await page.screenshot(path=str(output_dir / "screen-trends.png"))

    # An offline dossier of today lowers today's online rate: the chart re-reads and moves.
    await site.ingest(server, dossier("TR-2", "25201", channel=1))
    await site.received(server, before + 2)
    lowered = await online_rate(site, server)
    assert lowered < received
    await expect(chart).to_have_attribute("data-last", str(lowered), timeout=LIVE_MS)


async def test_playlist_cycles_and_keys_switch_views(
    page: Page, site: Site, server: RunningServer, offline: list[str], output_dir: Path
) -> None:
    views = "overview,map,trends,scorecard"
    await page.goto(f"{server.url}/screen?unit=70&views={views}&every=2#token={site.province}")
    body = page.locator("body")
    await expect(body).to_have_attribute("data-conn", "live", timeout=LIVE_MS)
    seen = []
    for _ in range(5):
        await expect(body).not_to_have_attribute("data-view", seen[-1] if seen else "-")
        seen.append(await body.get_attribute("data-view"))
    assert seen[:4] == ["overview", "map", "trends", "scorecard"][: len(seen[:4])] or set(seen) == {
        "overview",
        "map",
        "trends",
        "scorecard",
    }, seen
    assert set(seen) == {"overview", "map", "trends", "scorecard"}
    # Only the shown view is visible.
    for name in ["overview", "map", "trends", "scorecard"]:
        if name != seen[-1]:
            assert await page.locator(f"#view-{name}").is_hidden() or (
                await body.get_attribute("data-view") == name
            )
    # Keys: 4 → the scorecard, its six groups (test_scorecard_view.py follows it live).
    await page.keyboard.press("4")
    await expect(body).to_have_attribute("data-view", "scorecard")
    await expect(page.locator("#view-scorecard [data-group]")).to_have_count(6)
    await page.keyboard.press("ArrowRight")
    await expect(body).to_have_attribute("data-view", "overview")
    await page.keyboard.press("ArrowLeft")
    await expect(body).to_have_attribute("data-view", "scorecard")


async def test_demo_rules_fill_the_ticker_critical_band_and_acknowledged_look(
    page: Page, site: Site, server: RunningServer, offline: list[str], output_dir: Path
) -> None:
    db = Database(site.url, pool_size=1)
    try:
        async with db.session() as session:
            assert await ensure_demo_rules(session) == len(DEMO_RULES) == 5
        async with db.session() as session:  # once: never again on this database
            assert await ensure_demo_rules(session) == 0
    finally:
        await db.close()
    rules = await site.call(server, "GET", "/api/v1/alert-rules", site.admin)
    assert sorted(r["name"] for r in rules if r["created_by"] == "demo") == sorted(
        r.name for r in DEMO_RULES
    )
    # Five overdue dossiers in a commune of Bình Long (690): its district passes the
    # critical "overdue" rule (≥ 5).
    overdue = [
        dossier(
            f"OD-{i}",
            "25320",
            channel=1,
            NgayHenTra=local(datetime.now(LOCAL_TZ) - timedelta(seconds=5)),
        )
        for i in range(5)
    ]
    await site.ingest(server, *overdue)
    await page.goto(f"{server.url}/screen?unit=70&view=map#token={site.province}")
    band = page.locator("#critical")
    await expect(band).to_be_visible(timeout=LIVE_MS)
    await expect(band).to_contain_text("Hồ sơ quá hạn chưa giải quyết (cấp huyện)")
    await expect(band).to_contain_text("Thị xã Bình Long")
    # Big and red, at the top, in every view: readable from 3 m on a 55" TV.
    box = await band.bounding_box()
    assert box is not None and box["y"] < 150 and box["height"] >= 40
    size = await band.evaluate("b => parseFloat(getComputedStyle(b).fontSize)")
    assert size >= 32
    firing = page.locator("#alerts .alert.sev-critical.state-firing")
    await expect(firing).to_have_count(1)
    await page.screenshot(path=str(output_dir / "screen-critical.png"))

    alerts = await site.call(
        server, "GET", "/api/v1/alerts", site.admin, params={"unit": "70", "state": "firing"}
    )
    items = alerts["items"] if isinstance(alerts, dict) else alerts
    critical = next(a for a in items if a["severity"] == "critical")
    await site.call(server, "POST", f"/api/v1/alerts/{critical['id']}/ack", site.admin)
    acked = page.locator(f'#alerts .alert[data-alert="{critical["id"]}"]')
    await expect(acked).to_have_class(re.compile(r"\back-yes\b"), timeout=LIVE_MS)
    await expect(acked).to_contain_text("đã xác nhận")
    await expect(band).to_be_hidden()
    opacity = await acked.evaluate("a => getComputedStyle(a).opacity")
    assert float(opacity) < 1
