"""The API room's fixtures: one server for the module, and the screen room's Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import RunningServer, test_settings
from tests.screen.conftest import browser  # noqa: F401  (the system's Chromium, via Playwright)


@pytest.fixture(scope="module")
async def api_server(database_url: str) -> AsyncIterator[RunningServer]:
    server = RunningServer(test_settings(rate_limit_enabled=False), database_url)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(api_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, timeout=20) as client:
        yield client
