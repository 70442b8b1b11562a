"""E-mail rules while no SMTP server is configured (issue 19): the rule is accepted with a
warning, /readyz says so without failing, and the sender logs it once, not every round."""

from __future__ import annotations

import logging

import httpx
import pytest

from ioc.alerts.loops import AlertSender
from ioc.db import Database
from tests.alerts.conftest import (
    alert_overrides,
    alert_settings,
    evaluate,
    make_rule,
    publish_kpi,
    token,
)
from tests.alerts.test_api import RULE
from tests.conftest import ServerMaker


async def test_an_email_rule_without_smtp_is_created_with_a_warning(
    adb: Database, alerts_url: str, make_server: ServerMaker
) -> None:
    server = await make_server(url=alerts_url, **alert_overrides(smtp_host=None))
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    async with httpx.AsyncClient(base_url=server.url, headers=head, timeout=30) as http:
        created = await http.post("/api/v1/alert-rules", json=RULE)
        assert created.status_code == 201, created.text
        [warning] = created.json()["warnings"]
        assert "e-mail is not sent while IOC_SMTP_HOST is unset" in warning
        hook_only = await http.post(
            "/api/v1/alert-rules",
            json={**RULE, "recipients": [{"channel": "webhook", "url": "http://127.0.0.1:9/h"}]},
        )
        assert hook_only.status_code == 201, hook_only.text
        assert hook_only.json()["warnings"] == []
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    email = ready.json()["checks"]["email"]
    assert email["ok"] is True and email["smtp"] is None and email["email_rules"] == 1
    assert "IOC_SMTP_HOST" in email["warning"]


async def test_with_smtp_there_is_no_warning(
    adb: Database, alerts_url: str, make_server: ServerMaker
) -> None:
    server = await make_server(url=alerts_url, **alert_overrides())
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    async with httpx.AsyncClient(base_url=server.url, headers=head, timeout=30) as http:
        created = await http.post("/api/v1/alert-rules", json=RULE)
        ready = await http.get("/readyz")
    assert created.json()["warnings"] == []
    email = ready.json()["checks"]["email"]
    assert email["ok"] is True and email["smtp"].startswith("127.0.0.1:")
    assert "warning" not in email


async def test_the_sender_logs_a_missing_smtp_server_once(
    adb: Database, caplog: pytest.LogCaptureFixture
) -> None:
    settings = alert_settings(smtp_host=None, alerts_retry_base_seconds=0.01)
    await make_rule(adb)
    await make_rule(adb, name="Hồ sơ trực tuyến thấp", kpi="dossier_online_rate")
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await publish_kpi(adb, "dossier_online_rate", "689", 0.10)
    await evaluate(adb)
    sender = AlertSender(adb, settings)
    try:
        with caplog.at_level(logging.WARNING, logger="ioc.alerts"):
            rounds = []
            for _ in range(4):
                await sender.run_once()
                assert sender.last_round is not None
                rounds.append(sender.last_round.smtp_unset)
                await _past_backoff(adb)
    finally:
        await sender.stop()
    assert rounds[0] >= 1 and sum(rounds) >= 3  # it kept trying…
    said = [r.getMessage() for r in caplog.records if "IOC_SMTP_HOST" in r.getMessage()]
    assert len(said) == 1  # …and said so once
    assert said[0].startswith("alert e-mails are waiting: e-mail is not sent while")


async def _past_backoff(db: Database) -> None:
    from sqlalchemy import text

    async with db.session() as session:
        await session.execute(
            text("UPDATE alert_notifications SET next_attempt_at = now() - interval '1 second'")
        )
