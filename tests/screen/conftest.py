"""A headless Chromium from the system (Debian's `chromium`), driven by Playwright.

Never downloads a browser: without /usr/bin/chromium (or $IOC_CHROMIUM) browser tests are
skipped on a developer's machine, saying so, and fail under CI (`tests/tools.py`), where
`.ci/run` installs the package.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from tests.conftest import RunningServer, test_settings
from tests.tools import missing

# Generous waits for what the page shows: a loaded CI machine may take seconds where a
# laptop takes milliseconds; assertions still return as soon as the page is right.
expect.set_options(timeout=20_000)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    candidates = [os.environ.get("IOC_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        missing("no Chromium: install Debian's `chromium` (apt-get install -y chromium)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh 1920×1080 page (its own localStorage) that fails the test on a script error."""
    context = await browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield tab
    await context.close()
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture(scope="module")
async def screen_server(database_url: str) -> AsyncIterator[RunningServer]:
    """One server for a module's read-only tests: starting and stopping every service of the
    app per test would be most of this room's test time."""
    server = RunningServer(test_settings(), database_url)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def screen_client(screen_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=screen_server.url, timeout=10) as http:
        yield http


async def refuse_other_hosts(page: Page, server_url: str) -> list[str]:
    """Abort and record every request of the page to a host other than the server's (a
    government network has no internet); the caller asserts the list stays empty."""
    own = urlsplit(server_url).netloc
    outside: list[str] = []

    async def guard(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await page.route("**/*", guard)
    return outside
