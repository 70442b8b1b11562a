"""A department head's day in the console: signs in with a token, creates a rule by form
(looking at the KPI's 30 days against the threshold), sees it fire, opens the alert from
the e-mail's link and acknowledges it with a note; and signs in through single sign-on."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, expect

from tests.alerts.conftest import eventually
from tests.webconsole.conftest import Console, axe_serious, sign_in

pytestmark = pytest.mark.browser


async def test_rule_by_form_fires_and_is_acknowledged_from_the_email_link(
    page: Page, console: Console, browser: Browser
) -> None:
    token = await console.token("department_head", "689", "Trưởng phòng Nội vụ 689")
    await sign_in(page, console, token, "/console/rules")
    await page.get_by_role("link", name="Tạo quy tắc mới").click()
    await page.get_by_label("Tên").fill("Nhiều hồ sơ tiếp nhận hôm nay")
    await page.get_by_label("Chỉ số").select_option("dossier_received")
    await page.get_by_label("Đơn vị").fill("689")
    await page.get_by_label("Kỳ").select_option("today")
    await page.get_by_label("Phép so sánh").select_option(">")
    await page.get_by_label("Ngưỡng", exact=True).fill("2")
    await page.get_by_label("Gửi e-mail tới").fill("truongphong@binhphuoc.gov.vn")
    await page.get_by_role("button", name="Xem trước").click()
    # The KPI now and over 30 days against the proposed threshold: 3 today, 1 three days ago.
    await expect(page.get_by_text("Giá trị hiện tại: 3")).to_be_visible()
    await expect(page.locator("#preview-summary")).to_contain_text(
        "đã vượt ngưỡng 1 trên 30 ngày có dữ liệu"
    )
    await expect(page.locator("svg.chart circle")).to_have_count(30)
    await page.get_by_label("Ngưỡng", exact=True).fill("0")
    await page.get_by_role("button", name="Xem trước").click()
    await expect(page.locator("#preview-summary")).to_contain_text("đã vượt ngưỡng 2 trên 30")
    await page.get_by_label("Ngưỡng", exact=True).fill("2")
    await page.get_by_role("button", name="Lưu").click()
    await expect(page).to_have_url(re.compile(r"/console/rules/\d+\?done=saved$"))

    # The evaluator fires it (the KPI engine already counted 3 > 2): the alerts list shows it.
    await page.get_by_role("link", name="Cảnh báo", exact=True).click()
    row = page.locator("#alert-rows tr", has_text="Nhiều hồ sơ tiếp nhận hôm nay")
    for _ in range(60):
        if await row.filter(has_text="Đang vượt ngưỡng").count():
            break
        await page.wait_for_timeout(500)
        await page.reload()
    await expect(row).to_contain_text("Đang vượt ngưỡng")

    # The e-mail's link opens exactly that alert's page, where it is acknowledged.
    def link() -> str | None:
        for _subject, body in console.smtp.texts():
            found = re.search(r"Xác nhận \(acknowledge\): (\S+)", body)
            if found and "Nhiều hồ sơ tiếp nhận hôm nay" in body:
                return found.group(1)
        return None

    async def probe() -> str | None:
        return link()

    url = await eventually(probe, timeout=30)
    assert re.fullmatch(re.escape(console.url) + r"/console/alerts/\d+", url)
    await page.goto(url)
    await expect(page.get_by_role("heading", level=1)).to_contain_text(
        "Nhiều hồ sơ tiếp nhận hôm nay"
    )
    await expect(page.locator("dl.facts")).to_contain_text("Đang vượt ngưỡng")
    await page.get_by_label("Ghi chú khi xác nhận").fill("Đã giao phòng một cửa xử lý")
    await page.get_by_role("button", name="Xác nhận đã biết").click()
    await expect(page.get_by_role("status")).to_contain_text("Đã xác nhận")
    await expect(page.locator("dl.facts")).to_contain_text("Trưởng phòng Nội vụ 689")
    await expect(page.locator("dl.facts")).to_contain_text("Đã giao phòng một cửa xử lý")
    # The history and the deliveries of the alert are on the page.
    await expect(page.locator("table").first).to_contain_text("Đã xác nhận")
    await expect(page.locator("table").nth(1)).to_contain_text("truongphong@binhphuoc.gov.vn")
    # Accessibility of what a department head opens (axe-core: no serious violation).
    cookies = await page.context.cookies()
    paths = [urlsplit(url).path, "/console/alerts", "/console/rules", "/console/silences"]
    found = {path: await axe_serious(browser, console, cookies, path) for path in paths}
    assert {path: v for path, v in found.items() if v} == {}


async def test_single_sign_on_maps_claims_to_role_and_unit(page: Page, console: Console) -> None:
    await page.goto(console.url + "/console/alerts")
    await page.get_by_role("link", name="Đăng nhập một lần (SSO) của tỉnh").click()
    # The provider's own login form (oidc-provider's development interaction).
    await page.locator("input[name=login]").fill("truongphong")
    await page.locator("input[name=password]").fill("any")
    await page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]", has_text=re.compile("Continue|Authorize"))
    if await consent.count():
        await consent.click()
    await expect(page).to_have_url(re.compile(r"/console/alerts$"))
    header = page.locator("header .who")
    await expect(header).to_contain_text("Trần Thị Trưởng Phòng (SSO)")
    await expect(header).to_contain_text("Trưởng phòng")
    await expect(header).to_contain_text("689")
    # The token minted for the session is a real ioc token; signing out revokes it.
    rows = await console.sql(
        "SELECT role, unit_code, revoked_at FROM api_tokens WHERE name = :n",
        n="Trần Thị Trưởng Phòng (SSO)",
    )
    assert [(r.role, r.unit_code, r.revoked_at) for r in rows] == [("department_head", "689", None)]
    await page.get_by_role("button", name="Đăng xuất").click()
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    rows = await console.sql(
        "SELECT revoked_at FROM api_tokens WHERE name = :n", n="Trần Thị Trưởng Phòng (SSO)"
    )
    assert rows[0].revoked_at is not None
    await page.goto(console.url + "/console/alerts")
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))


async def test_single_sign_on_refuses_an_identity_without_a_mapped_role(
    page: Page, console: Console
) -> None:
    await page.goto(console.url + "/console/sign-in")
    await page.get_by_role("link", name="Đăng nhập một lần (SSO) của tỉnh").click()
    await page.locator("input[name=login]").fill("khach")
    await page.locator("input[name=password]").fill("any")
    await page.locator("button[type=submit]").click()
    consent = page.locator("button[type=submit]", has_text=re.compile("Continue|Authorize"))
    if await consent.count():
        await consent.click()
    await expect(page.get_by_role("alert")).to_contain_text("IOC_CONSOLE_OIDC_ROLES")
    await expect(page).to_have_url(re.compile(r"/console/sign-in/sso/callback"))
