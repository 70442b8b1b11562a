"""A district manages its feed subscription in the console: creates it (the secret shown
once), watches its delivery health, rotates the secret, replays from a seq, pauses and
resumes it — and may not touch what is outside its unit or its role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, expect

from tests.alerts.conftest import WebhookReceiver
from tests.webconsole.conftest import Console, axe_serious, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    yield hook
    await hook.stop()


async def test_district_manages_its_subscription(
    page: Page, console: Console, receiver: WebhookReceiver, browser: Browser
) -> None:
    token = await console.token("district", "689", "IOC huyện 689")
    await sign_in(page, console, token, "/console/feeds")
    nav = page.get_by_role("navigation", name="Điều hướng chính")
    await expect(nav.get_by_role("link", name="Kênh dữ liệu")).to_be_visible()
    await expect(nav.get_by_role("link", name="Mã truy cập")).to_have_count(0)
    await expect(nav.get_by_role("link", name="Chất lượng dữ liệu")).to_have_count(0)

    await page.get_by_label("Địa chỉ nhận (URL)").fill(receiver.url)
    await expect(page.get_by_label("Đơn vị")).to_have_value("689")
    await page.get_by_label("dossier").check()  # the 689 dossiers' events, to replay below
    await page.get_by_role("button", name="Tạo").click()
    first = await page.locator("#new-secret").inner_text()
    assert first.startswith("whsec_")
    await expect(page.locator("#sub-status")).to_contain_text("active")

    await page.get_by_label("Gửi lại từ seq").fill("0")
    await page.get_by_role("button", name="Xử lý lại").click()
    await expect(page.get_by_role("status")).to_contain_text("Đã xếp lịch gửi lại")

    # Delivery health: the replayed events of 689 reach the receiver, each attempt logged.
    for _ in range(60):
        if await page.locator("table.list tbody tr", has_text="OK").count():
            break
        await page.wait_for_timeout(500)
        await page.reload()
    await expect(page.locator("table.list tbody tr", has_text="OK").first).to_be_visible()
    assert receiver.bodies()

    await page.get_by_role("button", name="Đổi khoá bí mật").click()
    second = await page.locator("#new-secret").inner_text()
    assert second.startswith("whsec_") and second != first
    await page.goto(console.url + "/console/feeds")
    await page.get_by_role("link", name=receiver.url).click()
    await expect(page.locator("#sub-status")).to_contain_text("active")
    await expect(page.locator("#new-secret")).to_have_count(0)  # shown once only

    await page.get_by_role("button", name="Tạm dừng").click()
    await expect(page.locator("#sub-status")).to_contain_text("paused")
    await page.get_by_role("button", name="Tiếp tục").click()
    await expect(page.locator("#sub-status")).to_contain_text("active")
    # Accessibility of the district's pages (axe-core: no serious violation).
    cookies = await page.context.cookies()
    paths = ["/console/feeds", urlsplit(page.url).path, "/console/alerts"]
    found = {path: await axe_serious(browser, console, cookies, path) for path in paths}
    assert {path: v for path, v in found.items() if v} == {}

    await page.get_by_role("link", name="Kênh dữ liệu").click()
    await expect(page.locator("table.list")).to_contain_text(receiver.url)
    await page.get_by_role("link", name=receiver.url).click()
    await page.get_by_role("button", name="Xoá").click()
    await expect(page).to_have_url(re.compile(r"/console/feeds$"))
    await expect(page.locator("table.list")).not_to_contain_text(receiver.url)


async def test_district_cannot_subscribe_another_district(
    page: Page, console: Console, receiver: WebhookReceiver
) -> None:
    token = await console.token("district", "689", "IOC huyện 689 (b)")
    await sign_in(page, console, token, "/console/feeds")
    await page.get_by_label("Địa chỉ nhận (URL)").fill(receiver.url)
    await page.get_by_label("Đơn vị").fill("688")
    response = None
    async with page.expect_response(re.compile(r"/console/feeds$")) as info:
        await page.get_by_role("button", name="Tạo").click()
    response = await info.value
    assert response.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Bạn không có quyền làm việc này"
    )
