"""`/docs` and `/redoc` work in an operations centre without Internet access: Chromium opens
them with every request to another host refused, and they still list the operations."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def _offline_page(browser: Browser) -> tuple[Page, list[str], list[str]]:
    """A page whose requests may reach 127.0.0.1 only; the others are aborted and recorded."""
    context = await browser.new_context(service_workers="block")
    left: list[str] = []
    errors: list[str] = []

    async def only_here(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            left.append(url)
            await route.abort()

    await context.route("**/*", only_here)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: errors.append(f"failed: {req.url}"))
    return page, left, errors


async def test_swagger_ui_lists_operations_without_leaving_the_server(
    browser: Browser, api_server: RunningServer
) -> None:
    page, left, errors = await _offline_page(browser)
    await page.goto(api_server.url + "/docs")
    await expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/ingest/dossiers")
    ).to_be_visible()
    await expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    assert await page.locator(".opblock").count() >= 40
    await page.wait_for_load_state("networkidle")
    await page.context.close()
    assert left == [], f"/docs asked other hosts for {left}"
    assert errors == [], errors


async def test_redoc_lists_operations_without_leaving_the_server(
    browser: Browser, api_server: RunningServer
) -> None:
    page, left, errors = await _offline_page(browser)
    await page.goto(api_server.url + "/redoc")
    await expect(
        page.locator("h2", has_text="Push one edXML envelope or status message")
    ).to_be_visible()
    assert await page.locator("h2").count() >= 40
    await page.wait_for_load_state("networkidle")
    await page.context.close()
    assert left == [], f"/redoc asked other hosts for {left}"
    assert errors == [], errors
