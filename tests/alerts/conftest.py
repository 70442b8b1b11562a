"""Fixtures of the alert tests: a fresh database per test (the evaluator's cursor and the
outbox are deployment-wide), helpers to publish KPI events and to create rules."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import text

from ioc.alerts.evaluator import Round, evaluate_round
from ioc.alerts.models import RuleIn
from ioc.alerts.rules import Rule, create_rule
from ioc.alerts.sender import SendRound, send_round
from ioc.auth import create_token
from ioc.db import Database
from ioc.events import NewEvent, publish
from ioc.settings import Settings
from tests.conftest import DatabaseFactory, free_port

T = TypeVar("T")


@pytest.fixture(scope="session")
async def alerts_url(databases: DatabaseFactory) -> str:
    """The alert tests' own database (migrated, demo province); emptied before each test."""
    return await databases.create()


@pytest.fixture
async def adb(alerts_url: str) -> AsyncIterator[Database]:
    """The alert tests' database with no rules, alerts, outbox or events: the evaluator's
    cursor and the outbox are deployment-wide, so each test starts from a clean slate."""
    database = Database(alerts_url, pool_size=3)
    async with database.session() as session:
        await session.execute(
            text(
                "TRUNCATE alert_delivery_attempts, alert_notifications, alert_silences, "
                "alert_transitions, alerts, alert_rules, events RESTART IDENTITY"
            )
        )
        await session.execute(text("UPDATE alert_cursor SET seq = 0"))
    yield database
    await database.close()


async def publish_kpi(
    db: Database,
    kpi: str,
    unit: str,
    value: float | None,
    *,
    window: str = "month",
    numerator: float | None = None,
    denominator: float | None = None,
    target: float | None = 0.95,
) -> None:
    """Publish a `kpi` event exactly as the KPI engine does (architecture §2)."""
    payload = {
        "unit": unit,
        "window": window,
        "as_of": datetime.now(UTC).isoformat(),
        "kpi": {
            "id": kpi,
            "value": value,
            "numerator": numerator,
            "denominator": denominator,
            "target": target,
            "status": "no_data" if value is None else "bad",
        },
    }
    async with db.session() as session:
        await publish(
            session,
            [NewEvent("kpi", payload, unit_code=unit, time_window=window, subject=kpi)],
        )


async def make_rule(db: Database, **fields: Any) -> tuple[Rule, str]:
    data: dict[str, Any] = {
        "name": "Hồ sơ đúng hạn thấp",
        "kpi": "dossier_ontime_rate",
        "unit": "689",
        "window": "month",
        "op": "<",
        "threshold": 0.95,
        "severity": "critical",
        "recipients": [{"channel": "email", "to": "truongphong@binhphuoc.gov.vn"}],
    }
    data.update(fields)
    async with db.session() as session:
        return await create_rule(
            session, RuleIn(**data), scope_unit=None, created_by="test", allow_private=True
        )


async def evaluate(db: Database, *, later: float = 0.0, recompute: bool = False) -> Round:
    """One evaluator round, as if run `later` seconds from now (so waits need no sleeping)."""
    async with db.session() as session:
        return await evaluate_round(
            session, datetime.now(UTC) + timedelta(seconds=later), recompute=recompute
        )


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts.
    `stop()` closes the port (the mail server is "down"); `start()` opens it again."""

    def __init__(self) -> None:
        # While "down", the port stays bound but not listening: connections are refused and
        # no other process on the machine can take the port meanwhile.
        self._placeholder = socket.socket()
        self._placeholder.bind(("127.0.0.1", 0))
        self.port = int(self._placeholder.getsockname()[1])
        self.messages: list[EmailMessage] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._placeholder.close()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def texts(self) -> list[tuple[str, str]]:
        """(subject, plain-text body) of every message received."""
        out = []
        for m in self.messages:
            body = m.get_body(preferencelist=("plain",))
            assert body is not None
            out.append((str(m["Subject"]), body.get_content()))
        return out

    def htmls(self) -> list[str]:
        """The HTML part of every message received."""
        out = []
        for m in self.messages:
            body = m.get_body(preferencelist=("html",))
            assert body is not None and body.get_content_type() == "text/html"
            out.append(body.get_content())
        return out


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 recording every POST (headers, body); answers
    `status` (settable, to play a failing endpoint)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=self.port, log_config=None, interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ioc"

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("webhook receiver did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    yield hook
    await hook.stop()


def alert_overrides(smtp: SmtpSink | None = None, **overrides: Any) -> dict[str, Any]:
    """Settings values with fast loops, sending to the test's SMTP sink."""
    values: dict[str, Any] = {
        "database_url": None,
        "migrate_on_start": False,
        "webhooks_allow_private": True,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port if smtp else free_port(),
        "smtp_from": "ioc@binhphuoc.gov.vn",
        "smtp_timeout_seconds": 5,
        "public_url": "https://ioc.binhphuoc.gov.vn",
        "alerts_group_wait_seconds": 0,
        "alerts_retry_base_seconds": 0.2,
        "alerts_retry_max_seconds": 1,
        "alerts_eval_seconds": 0.2,
        "alerts_send_seconds": 0.2,
        "alerts_tick_seconds": 0.5,
    }
    values.update(overrides)
    return values


def alert_settings(smtp: SmtpSink | None = None, **overrides: Any) -> Settings:
    return Settings(**alert_overrides(smtp, **overrides))


async def token(db: Database, role: str, unit: str | None, name: str) -> dict[str, str]:
    """Authorization headers of a new token in the alert tests' database."""
    async with db.session() as session:
        secret, _ = await create_token(session, name=name, role=role, unit_code=unit)
    return {"Authorization": f"Bearer {secret}"}


async def send_now(db: Database, settings: Settings, *, later: float = 0.0) -> SendRound:
    """One sender round, as the sender service runs it (as if `later` seconds from now)."""
    async with httpx.AsyncClient() as client:
        return await send_round(db, settings, client, datetime.now(UTC) + timedelta(seconds=later))


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait (generously) until `predicate()` holds; fail the test if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached within the timeout")
        await asyncio.sleep(0.05)


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """Call `probe()` until it returns something truthy (generous timeout); return that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s (last: {result!r})")
        await asyncio.sleep(0.05)
