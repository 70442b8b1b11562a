"""The console in a real Chromium: a real server (every service running), a real SMTP sink,
a real OpenID Connect provider (panva/oidc-provider under Node), axe-core from npm.

Every page runs in a context that aborts, and records, any request to a host other than the
server or the provider: the console must not need the network. The provider and axe-core
come from `tests/webconsole/oidc` (`npm ci` there; `make test` does it).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import text

from ioc.auth import create_token
from ioc.collectors import ingest_json
from ioc.db import Database
from ioc.localtime import LOCAL_TZ
from ioc.settings import Settings
from tests.alerts.conftest import SmtpSink, alert_overrides
from tests.collectors.factories import dossier
from tests.conftest import DatabaseFactory, RunningServer, free_port
from tests.screen.conftest import browser  # noqa: F401  (the session's Chromium)
from tests.tools import missing

expect.set_options(timeout=20_000)

HERE = Path(__file__).resolve().parent
PROVIDER_DIR = HERE / "oidc"
AXE = HERE / "vendor" / "axe.min.js"
CLIENT_SECRET = "test-client-secret-0123456789"


class Provider:
    """`node provider.mjs` on a free port, stopped at the end."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, redirect_uri: str) -> None:
        node = shutil.which("node")
        if node is None:
            missing("no Node.js: install Debian's `nodejs` to run the OpenID provider")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
            missing(
                "the OpenID provider is not installed: run `npm ci` in tests/webconsole/oidc"
                " (`make test` does it)"
            )
        self.process = subprocess.Popen(
            [node, "provider.mjs", str(self.port), redirect_uri, CLIENT_SECRET],
            cwd=PROVIDER_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    r = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                    if r.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the OpenID provider did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Console:
    """The running server, its database, its SMTP sink and its OpenID provider."""

    def __init__(self, server: RunningServer, db: Database, smtp: SmtpSink, provider: Provider):
        self.server, self.db, self.smtp, self.provider = server, db, smtp, provider

    @property
    def url(self) -> str:
        return self.server.url

    async def token(self, role: str, unit: str | None, name: str) -> str:
        async with self.db.session() as session:
            secret, _ = await create_token(session, name=name, role=role, unit_code=unit)
        return secret

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        async with self.db.session() as session:
            result = await session.execute(text(statement), params)
            return list(result) if result.returns_rows else []


@pytest.fixture(scope="module")
async def console(databases: DatabaseFactory) -> AsyncIterator[Console]:
    """One server for the module (its own database, demo province, dossiers of 689 on
    today and three days ago), an SMTP sink and an OpenID provider."""
    url = await databases.create()
    smtp = SmtpSink()
    smtp.start()
    provider = Provider()
    settings = Settings(
        **alert_overrides(
            smtp,
            console_secret_key="k" * 40,
            console_oidc_issuer=provider.issuer,
            console_oidc_client_id="ioc-console",
            console_oidc_client_secret=CLIENT_SECRET,
            console_oidc_scopes="openid profile email ioc",
            console_oidc_roles={"ioc-department-heads": "department_head", "ioc-it": "admin"},
        )
    )
    server = RunningServer(settings, url)
    await provider.start(f"{server.url}/console/sign-in/sso/callback")
    db = Database(url, pool_size=3)
    await _dossiers(db)
    await server.start()
    yield Console(server, db, smtp, provider)
    await server.stop()
    await db.close()
    provider.stop()
    smtp.stop()


async def _dossiers(db: Database) -> None:
    """Three dossiers of 689 received today, one three days ago: a `dossier_received` series."""
    now = datetime.now(LOCAL_TZ)
    stamps = [now - timedelta(minutes=m) for m in (30, 20, 10)] + [now - timedelta(days=3)]
    records = [
        dossier(f"CONSOLE-{i}", NgayTiepNhan=s.strftime("%Y%m%d%H%M%S"),
                NgayHenTra=(s + timedelta(days=10)).strftime("%Y%m%d%H%M%S"))
        for i, s in enumerate(stamps)
    ]  # fmt: skip
    async with db.session() as session:
        await ingest_json(session, "dossiers", "portal-test", records)


@pytest.fixture
async def context(browser: Browser, console: Console) -> AsyncIterator[BrowserContext]:  # noqa: F811
    """A fresh browser profile that refuses (and records) requests to any other host."""
    ctx = await browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    allowed = {urlsplit(console.url).netloc, urlsplit(console.provider.issuer).netloc}
    elsewhere: list[str] = []

    async def guard(route: Route) -> None:
        host = urlsplit(route.request.url).netloc
        if route.request.url.startswith(("data:", "blob:")) or host in allowed:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await ctx.route("**/*", guard)
    yield ctx
    await ctx.close()
    assert elsewhere == [], f"requests left the server: {elsewhere}"


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
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
    assert errors == [], f"errors in the page: {errors}"


async def csrf_of(page: Page) -> str:
    """The session's CSRF secret, as the page's forms carry it."""
    return await page.locator("input[name=csrf]").first.get_attribute("value") or ""


async def sign_in(page: Page, console: Console, token: str, path: str = "/console/alerts") -> None:
    """Sign in with a token through the form (from `path`, which redirects to it)."""
    await page.goto(console.url + path)
    await expect(page).to_have_url(re.compile(r"/console/sign-in"))
    await page.get_by_label("Mã truy cập (token)").fill(token)
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page).to_have_url(re.compile(re.escape(path) + r"$"))


async def axe_serious(
    browser: Browser,  # noqa: F811  (the fixture's value, passed on by the tests)
    console: Console,
    cookies: list[Any],
    path: str,
) -> list[str]:
    """axe-core's serious and critical violations of one page, in a profile with the same
    session (CSP bypassed only to inject axe itself)."""
    ctx = await browser.new_context(bypass_csp=True, locale="vi-VN")
    try:
        await ctx.add_cookies(cookies)
        tab = await ctx.new_page()
        await tab.goto(console.url + path)
        await tab.add_script_tag(path=str(AXE))
        result = await tab.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
    finally:
        await ctx.close()
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][:3]}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
