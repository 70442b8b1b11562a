"""The evaluator and sender as they run in `ioc serve`: real servers (and a real `ioc serve`
process killed with SIGKILL), a real SMTP server and a real webhook receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ioc.db import Database
from tests.alerts.conftest import (
    SmtpSink,
    WebhookReceiver,
    alert_overrides,
    evaluate,
    eventually,
    make_rule,
    publish_kpi,
    token,
)
from tests.conftest import ServerMaker, free_port
from tests.webhooks_reference import verify

FIRINGS = "SELECT count(*) FROM alert_transitions WHERE to_state = 'firing'"
RULE: dict[str, Any] = {
    "name": "Phản ánh xử lý đúng hạn thấp",
    "kpi": "report_ontime_rate",
    "unit": "689",
    "window": "7d",
    "op": "<",
    "threshold": 0.9,
    "severity": "warning",
}


async def _scalar(db: Database, sql: str) -> Any:
    async with db.session() as session:
        return (await session.execute(text(sql))).scalar_one()


async def test_server_notifies_by_email_webhook_and_metrics(
    adb: Database,
    alerts_url: str,
    make_server: ServerMaker,
    smtp: SmtpSink,
    receiver: WebhookReceiver,
) -> None:
    server = await make_server(url=alerts_url, **alert_overrides(smtp))
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    async with httpx.AsyncClient(base_url=server.url, headers=head, timeout=30) as http:
        created = await http.post(
            "/api/v1/alert-rules",
            json={
                **RULE,
                "recipients": [
                    {"channel": "email", "to": "pho.giamdoc@binhphuoc.gov.vn"},
                    {"channel": "webhook", "url": receiver.url},
                ],
            },
        )
        assert created.status_code == 201
        secret = created.json()["webhook_secret"]
        await publish_kpi(
            adb,
            "report_ontime_rate",
            "689",
            0.8125,
            window="7d",
            numerator=13,
            denominator=16,
            target=0.9,
        )
        await eventually(lambda: _true(len(smtp.messages) == 1 and len(receiver.received) == 1))
        subject, body = smtp.texts()[0]
        assert subject == (
            "[IOC][Cảnh báo] Cảnh báo: Tỷ lệ phản ánh xử lý đúng hạn tại Thành phố Đồng Xoài: "
            "81,25%"
        )
        assert "Giá trị: 81,25% (13/16)" in body
        assert "Chỉ tiêu: Tỷ lệ phản ánh xử lý đúng hạn — kỳ 7 ngày qua" in body
        assert f"{server.url}/screen?unit=689&window=7d" in body
        headers, raw = receiver.received[0]
        verify(secret, headers, raw)

        async def metrics_show_it() -> bool:
            # recorded just after the SMTP server accepted the message
            metrics = (await http.get("/metrics")).text
            return (
                'ioc_alerts_notifications_total{channel="email",outcome="sent"}' in metrics
                and 'ioc_alerts_alerts{state="firing"} 1.0' in metrics
            )

        await eventually(metrics_show_it)

        async def outbox_drained() -> bool:
            # the sender marks a notification sent in its own commit, just after delivery
            ready = (await http.get("/readyz")).json()["checks"]["alerts"]
            return bool(ready["outbox_pending"] == 0)

        await eventually(outbox_drained)
        ready = (await http.get("/readyz")).json()["checks"]["alerts"]
        assert (ready["ok"], ready["outbox_failed"], ready["outbox_pending"]) == (True, 0, 0)


async def _true(value: bool) -> bool:
    return value


async def test_for_seconds_fires_on_the_tick_without_new_data(
    adb: Database, alerts_url: str, make_server: ServerMaker, smtp: SmtpSink
) -> None:
    await make_server(url=alerts_url, **alert_overrides(smtp))
    await make_rule(adb, for_seconds=2)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await eventually(lambda: _true(len(smtp.messages) == 1))
    async with adb.session() as session:
        rows = (
            await session.execute(text("SELECT to_state, at FROM alert_transitions ORDER BY id"))
        ).all()
        kpi_events = (
            await session.execute(text("SELECT count(*) FROM events WHERE type = 'kpi'"))
        ).scalar_one()
    states = [r.to_state for r in rows]
    assert states[-2:] == ["pending", "firing"]
    held = (rows[-1].at - rows[-2].at).total_seconds()
    assert held >= 2.0
    assert kpi_events == 1  # the firing came from the tick, not from a new KPI event


async def test_two_servers_send_one_notification(
    adb: Database, alerts_url: str, make_server: ServerMaker, smtp: SmtpSink
) -> None:
    for _ in range(2):
        await make_server(url=alerts_url, **alert_overrides(smtp))
    await make_rule(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await eventually(lambda: _true(len(smtp.messages) >= 1))
    await asyncio.sleep(1.5)  # both replicas had many rounds to (wrongly) send again
    assert len(smtp.messages) == 1
    assert await _scalar(adb, "SELECT count(*) FROM alert_notifications") == 1
    assert await _scalar(adb, FIRINGS) == 1


async def test_crash_after_firing_before_sending_sends_after_restart(
    adb: Database, alerts_url: str, make_server: ServerMaker, smtp: SmtpSink
) -> None:
    await make_rule(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)  # the evaluator committed "firing" + outbox; the process died here
    assert await _scalar(adb, "SELECT attempts FROM alert_notifications") == 0
    await make_server(url=alerts_url, **alert_overrides(smtp))  # the restart
    await eventually(lambda: _true(len(smtp.messages) == 1))
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.79)  # still firing: nothing new
    await asyncio.sleep(1.5)
    assert len(smtp.messages) == 1
    assert await _scalar(adb, "SELECT count(*) FROM alert_notifications") == 1


@pytest.mark.slow
async def test_killed_ioc_serve_process_then_restart_sends_exactly_once(
    adb: Database, alerts_url: str, make_server: ServerMaker
) -> None:
    smtp = SmtpSink()  # the mail server is down while the first process runs
    env = {
        **os.environ,
        **{
            f"IOC_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in alert_overrides(smtp).items()
            if v is not None
        },
        "IOC_DATABASE_URL": alerts_url,
        "IOC_PORT": str(free_port()),
        "IOC_LOG_LEVEL": "warning",
    }
    await make_rule(adb)
    process = subprocess.Popen(
        [sys.executable, "-m", "ioc", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
        await eventually(
            lambda: _scalar(adb, "SELECT coalesce(max(attempts), 0) FROM alert_notifications"),
            timeout=30,
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert await _scalar(adb, "SELECT status FROM alert_notifications") == "pending"
    smtp.start()
    try:
        await make_server(url=alerts_url, **alert_overrides(smtp))
        await eventually(lambda: _true(len(smtp.messages) == 1), timeout=20)

        async def recorded() -> bool:
            # the sender records the outcome just after the SMTP server accepted it
            return bool(await _scalar(adb, "SELECT status FROM alert_notifications") == "sent")

        await eventually(recorded)
        await asyncio.sleep(1.0)
        assert len(smtp.messages) == 1
        assert await _scalar(adb, FIRINGS) == 1
    finally:
        smtp.stop()


async def test_ingested_reports_fire_through_the_kpi_engine(
    adb: Database, alerts_url: str, make_server: ServerMaker, smtp: SmtpSink
) -> None:
    """The whole pipe: reports pushed to ingest → KPI engine → alert → Vietnamese email."""
    server = await make_server(url=alerts_url, **alert_overrides(smtp))
    await make_rule(
        adb,
        name="Phản ánh quá hạn",
        kpi="report_overdue_open",
        window="today",
        op=">",
        threshold=0,
        severity="warning",
    )
    collector = await token(adb, "collector", "70", "tong-dai-1022")
    now = datetime.now(UTC)
    reports = [
        {
            "id": f"1022-ALERT-{i}",
            "received_at": (now - timedelta(days=3)).isoformat(),
            "channel": "phone",
            "category": "environment",
            "unit": "25195",
            "status": "in_progress",
            "due_at": (now - timedelta(days=1)).isoformat(),
            "title": "Rác thải tồn đọng",
        }
        for i in range(3)
    ]
    async with httpx.AsyncClient(base_url=server.url, headers=collector, timeout=30) as http:
        pushed = await http.post("/api/v1/ingest/reports", json=reports)
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["accepted"] == 3
    await eventually(lambda: _true(len(smtp.messages) == 1), timeout=30)
    subject, body = smtp.texts()[0]
    assert subject == (
        "[IOC][Cảnh báo] Cảnh báo: Phản ánh quá hạn chưa xử lý tại Thành phố Đồng Xoài: 3"
    )
    assert "Giá trị: 3" in body
    assert "Ngưỡng cảnh báo: > 0" in body
