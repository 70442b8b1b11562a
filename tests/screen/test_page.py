"""The page's own logic in a real Chromium: formats, backoff, ranking, token handling."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, Request, expect

from tests.conftest import RunningServer, TokenMaker

pytestmark = pytest.mark.browser


async def _module(page: Page, screen_server: RunningServer, name: str, body: str) -> Any:
    """Run `body` (an expression over `m`, the imported module) inside the served page."""
    if not page.url.startswith(screen_server.url):
        await page.goto(f"{screen_server.url}/screen")
    return await page.evaluate(
        f"async () => {{ const m = await import('/screen/assets/{name}'); return {body}; }}"
    )


async def test_vietnamese_and_english_formats(page: Page, screen_server: RunningServer) -> None:
    day = "new Date('2026-11-24T23:30:00+07:00')"
    vi = await _module(
        page,
        screen_server,
        "format.js",
        f"(f => [f.rate(0.9103), f.count(1441), f.date({day}), f.time({day}), f.hours(12.25),"
        " f.value('rate', null), f.rate(1), f.count(1234567)])(m.formatter('vi'))",
    )
    assert vi == ["91,03%", "1.441", "24/11/2026", "23:30:00", "12,3 giờ", "—", "100%", "1.234.567"]
    en = await _module(
        page,
        screen_server,
        "format.js",
        f"(f => [f.rate(0.9103), f.count(1441), f.date({day}), f.hours(12.25)])(m.formatter('en'))",
    )
    assert en == ["91.03%", "1,441", "24/11/2026", "12.3 h"]
    # Calendar days are Asia/Ho_Chi_Minh days, whatever the TV's clock zone says.
    assert await _module(page, screen_server, "format.js", f"m.isoDay({day})") == "2026-11-24"
    assert (
        await _module(
            page, screen_server, "format.js", "m.isoDay(new Date('2026-11-24T17:30:00Z'))"
        )
        == "2026-11-25"
    )


async def test_backoff_doubles_with_jitter_and_is_capped(
    page: Page, screen_server: RunningServer
) -> None:
    delays = await _module(
        page,
        screen_server,
        "live.js",
        "[1, 2, 3, 6, 20].flatMap(n => [m.backoffDelay(n, {random: () => 0}),"
        " m.backoffDelay(n, {random: () => 1})])",
    )
    assert delays == [500, 1000, 500, 2000, 500, 4000, 500, 10000, 500, 10000]


async def test_children_are_ranked_worst_first(page: Page, screen_server: RunningServer) -> None:
    ranked = await _module(
        page,
        screen_server,
        "model.js",
        """m.rankChildren(m.normChildren([
            {unit: '690', name: 'A', kpis: [{id: 'dossier_ontime_rate', value: 0.99,
                                              status: 'ok'}]},
            {unit: '691', name: 'B', kpis: [{id: 'dossier_ontime_rate', value: 0.5, status: 'bad'},
                                            {id: 'dossier_overdue_open', value: 3, status: 'bad'}]},
            {unit: '692', name: 'C', kpis: [{id: 'dossier_ontime_rate', value: 0.7,
                                              status: 'bad'}]},
            {unit: '693', name: 'D', kpis: [{id: 'dossier_ontime_rate', value: 0.6,
                                              status: 'bad'}]},
            {unit: '694', name: 'E', kpis: [{id: 'dossier_ontime_rate', value: 0.96,
                                              status: 'warn'}]},
        ], 'today')).map(c => c.code + ':' + c.bad + ':' + c.warn)""",
    )
    assert ranked == ["691:2:0", "693:1:0", "692:1:0", "694:0:1", "690:0:0"]


async def test_the_766_on_time_rate_is_the_headline(
    page: Page, screen_server: RunningServer
) -> None:
    """Children are ranked and shown by the 766 on-time rate (2.1) when the server has it,
    else by the plain rate."""
    picked = await _module(
        page,
        screen_server,
        "model.js",
        """[m.headlineOntime(new Map([['dossier_ontime_rate', {value: 0.9}],
                                      ['i766_2_1', {value: 0.7}]])).value,
            m.headlineOntime(new Map([['dossier_ontime_rate', {value: 0.9}]])).value,
            m.rankChildren(m.normChildren([
              {unit: '690', name: 'A', kpis: [{id: 'dossier_ontime_rate', value: 0.5},
                                              {id: 'i766_2_1', value: 0.9}]},
              {unit: '691', name: 'B', kpis: [{id: 'dossier_ontime_rate', value: 0.9},
                                              {id: 'i766_2_1', value: 0.6}]},
            ], 'today')).map(c => c.code)]""",
    )
    assert picked == [0.7, 0.9, ["691", "690"]]


async def test_snapshot_shapes_of_rest_and_websocket_read_alike(
    page: Page, screen_server: RunningServer
) -> None:
    """The websocket's snapshot keys children by window; the REST body lists them."""
    body = """(() => {
        const s = new m.ScreenState('689', 'month');
        s.applySnapshot({type: 'snapshot', seq: 7, kpis: {month: [{id: 'dossier_received',
            value: 3, status: 'ok'}]}, children: {month: [{unit: '25432', kpis: [
            {id: 'dossier_received', value: 2, status: 'ok'}]}]}, alerts: [
            {id: 1, state: 'firing'}, {id: 2, state: 'resolved'}]});
        const fromWs = [s.seq, s.kpis.get('dossier_received').value,
            s.children.get('25432').kpis.get('dossier_received').value, s.alerts.size];
        const dup = s.applyEvent({type: 'kpi', seq: 7, unit: '689', window: 'month',
            kpi: {id: 'dossier_received', value: 99}});
        const other = s.applyEvent({type: 'kpi', seq: 8, unit: '689', window: 'today',
            kpi: {id: 'dossier_received', value: 98}});
        const child = s.applyEvent({type: 'kpi', seq: 9, unit: '25432', window: 'month',
            kpi: {id: 'dossier_received', value: 5, status: 'ok'}});
        const resolved = s.applyEvent({type: 'alert', seq: 10, alert: {id: 1, state: 'resolved'}});
        const r = new m.ScreenState('689', 'month');
        r.applyRest({kpis: [{id: 'dossier_received', value: 4}], children: [{unit: '25432',
            kpis: [{id: 'dossier_received', value: 1}]}]});
        return [...fromWs, dup, other, child, resolved, s.seq,
            s.kpis.get('dossier_received').value,
            s.children.get('25432').kpis.get('dossier_received').value, s.alerts.size,
            r.kpis.get('dossier_received').value,
            r.children.get('25432').kpis.get('dossier_received').value];
    })()"""
    assert await _module(page, screen_server, "model.js", body) == [
        7,
        3,
        2,
        1,
        False,
        False,
        True,
        True,
        10,
        3,
        5,
        0,
        4,
        1,
    ]


async def test_without_token_the_login_form_shows(page: Page, screen_server: RunningServer) -> None:
    await page.goto(f"{screen_server.url}/screen?unit=689")
    await page.wait_for_selector("#login:not([hidden])")
    assert await page.get_attribute("body", "data-conn") == "login"
    assert await page.input_value("#login-unit") == "689"
    assert await page.text_content("#login h2") == "Đăng nhập màn hình IOC"


async def test_login_form_stores_the_token_and_opens_the_screen(
    page: Page, screen_server: RunningServer, make_token: TokenMaker
) -> None:
    token = await make_token("operator", "689")
    await page.goto(f"{screen_server.url}/screen?window=month")
    await page.fill("#login-token", token)
    await page.fill("#login-unit", "689")
    await page.click("#login button[type=submit]")
    await expect(page.locator("#unit-name")).to_have_text("Thành phố Đồng Xoài")
    await expect(page.locator("body")).to_have_attribute("data-conn", "live", timeout=10_000)
    assert page.url == f"{screen_server.url}/screen?window=month&unit=689"
    assert await page.evaluate("localStorage.getItem('ioc.screen.token')") == token


async def test_fragment_token_is_kept_locally_and_sent_only_as_header(
    page: Page, screen_server: RunningServer, make_token: TokenMaker
) -> None:
    token = await make_token("operator", "689")
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r))
    await page.goto(f"{screen_server.url}/screen?unit=689&window=month#token={token}")
    await expect(page.locator("#unit-name")).to_have_text("Thành phố Đồng Xoài")
    assert await page.text_content("#window-label") == "Tháng này"
    # The secret leaves the address bar, stays in this browser, and travels as a header.
    assert "token" not in page.url
    assert await page.evaluate("localStorage.getItem('ioc.screen.token')") == token
    assert await page.evaluate("localStorage.getItem('ioc.screen.token:689')") == token
    api = [r for r in requests if "/api/v1/" in r.url]
    assert api, "the page asked the API nothing"
    for request in api:
        assert token not in request.url
        assert (await request.all_headers())["authorization"] == f"Bearer {token}"
    for request in requests:
        if request.url.startswith("http") and "/api/v1/" not in request.url:
            assert token not in request.url
            assert "authorization" not in await request.all_headers()


async def test_refused_token_brings_back_the_login_form(
    page: Page, screen_server: RunningServer
) -> None:
    await page.goto(f"{screen_server.url}/screen?unit=689#token=ioc_not_a_real_token")
    await page.wait_for_selector("#login:not([hidden])")
    assert await page.text_content("#login-error") == "Mã truy cập không hợp lệ"
    assert await page.get_attribute("body", "data-conn") == "fatal"


async def test_unknown_or_foreign_unit_asks_again_instead_of_retrying(
    page: Page, screen_server: RunningServer, make_token: TokenMaker
) -> None:
    token = await make_token("district", "689")
    await page.goto(f"{screen_server.url}/screen?unit=688#token={token}")
    await expect(page.locator("#login-error")).to_have_text("Không có quyền xem đơn vị này")
    await page.goto(f"{screen_server.url}/screen?unit=68999")
    await expect(page.locator("#login-error")).to_have_text("Không có đơn vị với mã này")
    assert await page.get_attribute("body", "data-conn") == "fatal"
