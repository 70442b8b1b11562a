"""Notifications through a real SMTP server and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from ioc.alerts.models import SilenceIn
from ioc.alerts.service import acknowledge
from ioc.alerts.silences import create_silence, expire_silence
from ioc.db import Database
from tests.alerts.conftest import (
    SmtpSink,
    WebhookReceiver,
    alert_settings,
    evaluate,
    make_rule,
    publish_kpi,
    send_now,
)
from tests.webhooks_reference import verify

BOSS = "truongphong@binhphuoc.gov.vn"


async def test_email_and_webhook_in_vietnamese_with_correct_figures(
    adb: Database, smtp: SmtpSink, receiver: WebhookReceiver
) -> None:
    settings = alert_settings(smtp)
    rule, secret = await make_rule(
        adb,
        clear_threshold=0.97,
        recipients=[{"channel": "email", "to": BOSS}, {"channel": "webhook", "url": receiver.url}],
    )
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.9103, numerator=9103, denominator=10000)
    await evaluate(adb)
    result = await send_now(adb, settings)
    assert (result.sent, result.errors) == (2, 0)

    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == BOSS
    assert message["From"] == "ioc@binhphuoc.gov.vn"
    subject, body = smtp.texts()[0]
    assert subject == (
        "[IOC][Nghiêm trọng] Cảnh báo: Tỷ lệ hồ sơ giải quyết đúng hạn tại "
        "Thành phố Đồng Xoài: 91,03%"
    )
    assert "■ ĐANG CẢNH BÁO: Hồ sơ đúng hạn thấp" in body
    assert "Đơn vị: Thành phố Đồng Xoài (mã 689)" in body
    assert "Chỉ tiêu: Tỷ lệ hồ sơ giải quyết đúng hạn — kỳ tháng này" in body
    assert "Giá trị: 91,03% (9.103/10.000)" in body
    assert "Ngưỡng cảnh báo: < 95%" in body
    assert "Hết cảnh báo khi giá trị trở lại từ 97% trở lên" in body
    assert "Mục tiêu: 95%" in body
    assert re.search(r"Cảnh báo từ: \d\d:\d\d \d\d/\d\d/20\d\d \(giờ Việt Nam\)", body)
    assert "https://ioc.binhphuoc.gov.vn/screen?unit=689&window=month" in body

    assert len(receiver.received) == 1
    headers, raw = receiver.received[0]
    verify(secret, headers, raw)  # signed like docs/api.md §7
    payload = json.loads(raw)
    assert payload["type"] == "alert_notification"
    assert headers["webhook-id"] == payload["id"]
    [note] = payload["notifications"]
    assert note["kind"] == "firing"
    assert note["alert"]["rule_id"] == rule.id
    assert note["alert"]["value"] == 0.9103
    assert note["alert"]["unit_name"] == "Thành phố Đồng Xoài"
    assert note["alert"]["screen_url"].endswith("/screen?unit=689&window=month")


async def test_email_is_html_with_a_plain_part_and_says_how_a_rule_clears(
    adb: Database, smtp: SmtpSink
) -> None:
    """Issue 19: plain text only, "Hết cảnh báo khi vượt: 2" for a `>` rule, and a window
    for KPIs that have none."""
    settings = alert_settings(smtp)
    await make_rule(
        adb,
        name="Quá hạn <nhiều>",
        kpi="dossier_overdue_open",
        op=">",
        threshold=10,
        clear_threshold=2,
        window="today",
        severity="warning",
    )
    await publish_kpi(adb, "dossier_overdue_open", "689", 12, window="today", target=0)
    await evaluate(adb)
    assert (await send_now(adb, settings)).sent == 1
    [message] = smtp.messages
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    [(_, plain)] = smtp.texts()
    assert "■ ĐANG CẢNH BÁO: Quá hạn <nhiều>" in plain
    assert "Chỉ tiêu: Hồ sơ quá hạn chưa giải quyết\n" in plain  # no window: a "now" figure
    assert "Giá trị: 12\n" in plain
    assert "Ngưỡng cảnh báo: > 10" in plain
    assert "Hết cảnh báo khi giá trị giảm trở lại còn 2 trở xuống" in plain
    assert "vượt" not in plain
    html = smtp.htmls()[0]
    assert html.startswith("<!DOCTYPE html>") and '<html lang="vi">' in html
    assert "ĐANG CẢNH BÁO: Quá hạn &lt;nhiều&gt;" in html  # escaped
    assert "Hồ sơ quá hạn chưa giải quyết</td>" in html and "kỳ hôm nay" not in html
    assert "<strong" in html and ">12</strong>" in html
    assert "khi giá trị giảm trở lại còn 2 trở xuống" in html
    assert 'href="https://ioc.binhphuoc.gov.vn/console/alerts/' in html
    assert 'href="https://ioc.binhphuoc.gov.vn/screen?unit=689&amp;window=today"' in html


async def test_resolved_notice_sent_once(adb: Database, smtp: SmtpSink) -> None:
    settings = alert_settings(smtp)
    await make_rule(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.90)
    await evaluate(adb)
    await send_now(adb, settings)
    for _ in range(3):  # the same good value seen again and again
        await publish_kpi(adb, "dossier_ontime_rate", "689", 0.99)
        await evaluate(adb)
        await send_now(adb, settings)
    subjects = [s for s, _ in smtp.texts()]
    assert subjects == [
        "[IOC][Nghiêm trọng] Cảnh báo: Tỷ lệ hồ sơ giải quyết đúng hạn tại Thành phố Đồng Xoài: "
        "90%",
        "[IOC] Đã khắc phục: Tỷ lệ hồ sơ giải quyết đúng hạn tại Thành phố Đồng Xoài: 99%",
    ]
    assert "■ ĐÃ TRỞ LẠI BÌNH THƯỜNG" in smtp.texts()[1][1]


async def test_rules_firing_together_are_grouped_per_recipient(
    adb: Database, smtp: SmtpSink
) -> None:
    settings = alert_settings(smtp, alerts_group_wait_seconds=30)
    await make_rule(adb)
    await make_rule(
        adb,
        name="Số hồ sơ quá hạn",
        kpi="dossier_overdue_open",
        op=">",
        threshold=0,
        window="today",
        severity="warning",
    )
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await publish_kpi(adb, "dossier_overdue_open", "689", 12, window="today", target=0)
    result = await evaluate(adb)
    assert result.notifications == 2
    early = await send_now(adb, settings)
    assert (early.sent, len(smtp.messages)) == (0, 0)  # still inside the grouping window
    grouped = await send_now(adb, settings, later=31)  # the grouping window has passed
    assert (grouped.sent, len(grouped.messages)) == (2, 1)
    [(subject, body)] = smtp.texts()
    assert subject == "[IOC] 2 thông báo cảnh báo (2 đang cảnh báo): Thành phố Đồng Xoài"
    assert "Giá trị: 80%" in body
    # a "now" figure: the window does not change it, so the e-mail names none
    assert "Chỉ tiêu: Hồ sơ quá hạn chưa giải quyết\n" in body
    assert "Giá trị: 12" in body


async def test_reminders_until_acknowledged(adb: Database, smtp: SmtpSink) -> None:
    settings = alert_settings(smtp)
    await make_rule(adb, repeat_seconds=600)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    await send_now(adb, settings)
    assert (await evaluate(adb, later=590)).notifications == 0
    assert (await evaluate(adb, later=601)).notifications == 1
    await send_now(adb, settings, later=601)
    assert (await evaluate(adb, later=1000)).notifications == 0  # next one due at 1201
    assert [s.split(":")[0] for s, _ in smtp.texts()] == [
        "[IOC][Nghiêm trọng] Cảnh báo",
        "[IOC][Nghiêm trọng] Nhắc lại cảnh báo",
    ]
    async with adb.session() as session:
        alert_id = (await session.execute(text("SELECT id FROM alerts"))).scalar_one()
        acked = await acknowledge(session, alert_id, by="Trưởng phòng", comment="đang xử lý")
    assert (acked["state"], acked["acknowledged_by"], acked["ack_comment"]) == (
        "acknowledged",
        "Trưởng phòng",
        "đang xử lý",
    )
    assert (await evaluate(adb, later=5000)).notifications == 0
    await send_now(adb, settings, later=5000)
    assert len(smtp.messages) == 2
    # resolving an acknowledged alert still tells everyone
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.99)
    await evaluate(adb, later=5001)
    await send_now(adb, settings, later=5001)
    assert smtp.texts()[2][0].startswith("[IOC] Đã khắc phục:")


async def test_silence_suppresses_then_expires(adb: Database, smtp: SmtpSink) -> None:
    settings = alert_settings(smtp)
    await make_rule(adb)
    async with adb.session() as session:
        silence = await create_silence(
            session,
            SilenceIn(unit="689", until=datetime.now(UTC) + timedelta(hours=1), reason="bảo trì"),
            by="Trưởng phòng",
        )
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    deferred = await send_now(adb, settings)
    assert (deferred.sent, deferred.deferred, len(smtp.messages)) == (0, 1, 0)
    assert (await send_now(adb, settings)).deferred == 0  # deferred to the silence's end
    async with adb.session() as session:
        expired = await expire_silence(session, silence["id"], by="Trưởng phòng")
    assert expired["active"] is False
    sent = await send_now(adb, settings)
    assert sent.sent == 1
    assert smtp.texts()[0][0].startswith("[IOC][Nghiêm trọng] Cảnh báo:")


async def test_silence_lapsing_by_itself(adb: Database, smtp: SmtpSink) -> None:
    settings = alert_settings(smtp)
    rule, _ = await make_rule(adb)
    async with adb.session() as session:
        await create_silence(
            session,
            SilenceIn(rule=rule.id, until=datetime.now(UTC) + timedelta(seconds=30), reason="thử"),
            by="Trưởng phòng",
        )
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    assert (await send_now(adb, settings)).deferred == 1
    assert (await send_now(adb, settings, later=15)).sent == 0
    assert (await send_now(adb, settings, later=31)).sent == 1
    assert len(smtp.messages) == 1


async def test_smtp_down_then_back_delivers_exactly_once(adb: Database) -> None:
    smtp = SmtpSink()  # port reserved, server not started: connection refused
    settings = alert_settings(smtp)
    await make_rule(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    for i in range(3):  # each round past the previous (capped, jittered) backoff
        assert (await send_now(adb, settings, later=5 * i)).errors == 1
    smtp.start()
    try:
        for i in range(3, 8):
            await send_now(adb, settings, later=5 * i)
        assert len(smtp.messages) == 1
    finally:
        smtp.stop()
    async with adb.session() as session:
        outcomes = (
            (await session.execute(text("SELECT outcome FROM alert_delivery_attempts ORDER BY id")))
            .scalars()
            .all()
        )
        status = (
            await session.execute(text("SELECT status, attempts FROM alert_notifications"))
        ).one()
    assert outcomes == ["error", "error", "error", "sent"]
    assert tuple(status) == ("sent", 4)


async def test_webhook_client_error_fails_without_retry(
    adb: Database, receiver: WebhookReceiver
) -> None:
    receiver.status = 410
    settings = alert_settings()
    await make_rule(adb, recipients=[{"channel": "webhook", "url": receiver.url}])
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    result = await send_now(adb, settings)
    assert (result.sent, result.failed) == (0, 1)
    assert len(receiver.received) == 1
    assert (await send_now(adb, settings)).failed == 0
    assert len(receiver.received) == 1
