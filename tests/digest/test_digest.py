"""The weekly digest: a department head's e-mail received by a real SMTP server with the
right numbers in Vietnamese, a plain part and inline charts; the preview rendered in Chromium
with nothing loaded from elsewhere; sent once per recipient and week when two replicas run it,
and not again after a restart; retried when the mail server was down.

The week is the one the default schedule (Monday 07:30) makes due today, so the test follows
the calendar: its records are placed in that week."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from ioc.cli import app
from ioc.db import Database
from ioc.digest.content import build_digest
from ioc.digest.loops import DigestSender
from ioc.digest.render import preview_html
from ioc.digest.service import add_recipient, send_week
from ioc.localtime import LOCAL_TZ
from tests.alerts.conftest import SmtpSink, alert_overrides
from tests.conftest import DatabaseFactory
from tests.conftest import test_settings as settings_for
from tests.kpis.conftest import add_agency_report, add_dossier, add_report, engine_round

COMMUNE, OTHER, DISTRICT = "25432", "25433", "697"
HEAD = "truongphong.697@binhphuoc.gov.vn"
NOW = datetime.now(UTC)
WEEK = DigestSender(Database("postgresql://x@127.0.0.1/x"), settings_for()).due(NOW)
assert WEEK is not None


def day(n: int, hour: int = 9) -> datetime:
    """Day `n` (0 = Monday) of the digest's week, local time."""
    return datetime.combine(WEEK + timedelta(days=n), datetime.min.time(), LOCAL_TZ).replace(
        hour=hour
    )


@pytest.fixture(scope="module")
async def ddb(databases: DatabaseFactory) -> AsyncIterator[Database]:
    url = await databases.create()
    db = Database(url, pool_size=4)
    async with db.session() as s:
        # The commune: 4 dossiers received (2 online); 2 finished in the week, 1 of them late.
        await add_dossier(
            s, COMMUNE, day(0), channel=2, status=10, finished_at=day(1), due_at=day(3, 17)
        )
        await add_dossier(
            s, COMMUNE, day(0), channel=1, status=10, finished_at=day(4), due_at=day(2, 17)
        )
        await add_dossier(s, COMMUNE, day(2), channel=2)
        await add_dossier(s, COMMUNE, day(3), channel=1)
        # The other commune: 1 dossier, in person, finished on time.
        await add_dossier(
            s, OTHER, day(1), channel=1, status=10, finished_at=day(2), due_at=day(5, 17)
        )
        # Overdue now, all in the commune, received before the week: 2 dossiers not finished
        # past their due date, 1 hotline report unanswered past its, 1 agency report not filed.
        before = day(-20)
        for _ in range(2):
            await add_dossier(s, COMMUNE, before, channel=1, due_at=day(-10, 17))
        await add_report(s, COMMUNE, before, due_at=day(-10, 17))
        await add_agency_report(s, COMMUNE, before, day(-10, 17))
        # An alert of the district that fired on Tuesday and resolved on Thursday.
        rule = (
            await s.execute(
                text(
                    "INSERT INTO alert_rules (name, kpi, unit_code, time_window, op, threshold, "
                    "severity, webhook_secret, created_by) VALUES ('Tỷ lệ đúng hạn thấp', "
                    "'dossier_ontime_rate', :u, '7d', '<', 0.95, 'critical', 'whsec_x', 'test') "
                    "RETURNING id"
                ),
                {"u": DISTRICT},
            )
        ).scalar_one()
        alert = (
            await s.execute(
                text(
                    "INSERT INTO alerts (rule_id, unit_code, state, since) VALUES (:r, :u, "
                    "'resolved', :t) RETURNING id"
                ),
                {"r": rule, "u": DISTRICT, "t": day(3)},
            )
        ).scalar_one()
        for state, at in (("firing", day(1, 10)), ("resolved", day(3, 15))):
            await s.execute(
                text(
                    "INSERT INTO alert_transitions (alert_id, at, to_state, episode) "
                    "VALUES (:a, :t, :s, 1)"
                ),
                {"a": alert, "t": at, "s": state},
            )
        await add_recipient(s, DISTRICT, HEAD, "Trưởng phòng 697")
    await engine_round(db, NOW)
    yield db
    await db.close()


async def test_the_digest_says_the_weeks_numbers(ddb: Database) -> None:
    async with ddb.session() as s:
        digest = await build_digest(s, DISTRICT, WEEK)
    kpis = {k.id: k for k in digest.kpis}
    # District 697 = both communes: received 5, online 2 → 40 %; finished 3, late 1 → 2/3.
    assert kpis["dossier_online_rate"].value == pytest.approx(0.4)
    assert kpis["dossier_ontime_rate"].value == pytest.approx(2 / 3)
    assert kpis["dossier_ontime_rate"].status == "bad"
    assert len(kpis["dossier_ontime_rate"].history) == 30
    # The commune with the late dossier is first among the worst.
    assert digest.worst[0].unit == COMMUNE
    assert [(a.state, a.rule) for a in digest.alerts] == [
        ("firing", "Tỷ lệ đúng hạn thấp"),
        ("resolved", "Tỷ lệ đúng hạn thấp"),
    ]
    assert digest.score is not None and digest.score_max is not None
    assert digest.overdue == {
        "dossier_overdue_open": 2,
        "report_overdue_open": 1,
        "agency_report_overdue_open": 1,
    }


async def test_received_once_by_a_real_mail_server_from_two_replicas(ddb: Database) -> None:
    sink = SmtpSink()
    sink.start()
    try:
        settings = settings_for(
            **{k: v for k, v in alert_overrides(sink).items() if k.startswith(("smtp", "public"))}
        )
        replicas = [DigestSender(ddb, settings), DigestSender(ddb, settings)]
        await asyncio.gather(*(r.run_once() for r in replicas))
        assert len(sink.messages) == 1
        # A restart (a new process, the same schedule): nothing more.
        await DigestSender(ddb, settings).run_once()
        assert len(sink.messages) == 1
    finally:
        sink.stop()
    mail = sink.messages[0]
    assert mail["To"] == HEAD
    assert str(mail["Subject"]).startswith(f"[IOC] Bản tin tuần {WEEK:%d/%m}")
    plain = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    body = plain.get_content()
    assert "Tỷ lệ hồ sơ TTHC nộp trực tuyến" in body or "trực tuyến" in body
    assert "40%" in body and "66,7%" in body  # Vietnamese decimals
    assert "Không đạt" in body
    assert "1 lần vượt ngưỡng, 1 lần hết cảnh báo" in body
    assert "Hồ sơ TTHC quá hạn chưa giải quyết: 2\n" in body
    assert "Phản ánh, kiến nghị quá hạn: 1\n" in body
    assert "Báo cáo quá hạn chưa nộp: 1\n" in body
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    cids = {str(p["Content-ID"]).strip().strip("<>") for p in images}
    assert images and all(f"cid:{c}" in html.get_content() for c in cids)
    assert all(p.get_content()[:8] == b"\x89PNG\r\n\x1a\n" for p in images)
    for secret in ("Nguyễn", "0912"):  # no citizen in a digest
        assert secret not in body


async def test_a_failed_send_is_retried_and_then_sent_once(
    ddb: Database, databases: DatabaseFactory
) -> None:
    async with ddb.session() as s:
        await add_recipient(s, COMMUNE, "xa.25432@binhphuoc.gov.vn", None)
    down = SmtpSink()  # never started: the port refuses
    settings = settings_for(smtp_host="127.0.0.1", smtp_port=down.port, smtp_timeout_seconds=2)
    assert await send_week(ddb, settings, WEEK) == 0
    async with ddb.session() as s:
        state = (
            await s.execute(
                text(
                    "SELECT state, attempts FROM digest_sends "
                    "WHERE email = 'xa.25432@binhphuoc.gov.vn'"
                )
            )
        ).one()
    assert state == ("failed", 1)
    down.start()
    try:
        settings = settings_for(smtp_host="127.0.0.1", smtp_port=down.port)
        assert await send_week(ddb, settings, WEEK) == 1  # only the one not yet served
        assert await send_week(ddb, settings, WEEK) == 0
    finally:
        down.stop()
    assert [m["To"] for m in down.messages] == ["xa.25432@binhphuoc.gov.vn"]


async def test_preview_renders_offline_in_a_browser(
    ddb: Database, tmp_path: Path, database_url: str
) -> None:
    from tests.screen.conftest import CHROMIUM_ARGS, chromium_path
    from tests.tools import missing

    async with ddb.session() as s:
        digest = await build_digest(s, DISTRICT, WEEK)
    page_file = tmp_path / "digest.html"
    page_file.write_text(preview_html(digest, "http://ioc.local/screen"), encoding="utf-8")
    path = chromium_path()
    if path is None:
        missing("no Chromium: install Debian's `chromium` (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    outside: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()

            async def guard(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if url.startswith(("file:", "data:")):
                    await route.continue_()  # type: ignore[attr-defined]
                else:
                    outside.append(url)
                    await route.abort()  # type: ignore[attr-defined]

            await page.route("**/*", guard)
            await page.goto(page_file.as_uri())
            assert "Bản tin tuần" in await page.locator("h1").inner_text()
            widths = await page.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert widths and all(w == 480 for w in widths)
            row = page.locator('tr[data-kpi="dossier_ontime_rate"]')
            assert "66,7%" in await row.inner_text()
        finally:
            await browser.close()
    assert outside == [], outside
    assert urlsplit(page_file.as_uri()).scheme == "file"


async def test_command_line_preview_and_recipients(ddb: Database, tmp_path: Path) -> None:
    out = tmp_path / "ban-tin.html"
    env = {"IOC_DATABASE_URL": ddb.url}
    runner = CliRunner()
    added = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "digest",
            "recipients",
            "add",
            "--unit",
            DISTRICT,
            "--email",
            "pho.697@binhphuoc.gov.vn",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    listed = await asyncio.to_thread(runner.invoke, app, ["digest", "recipients", "list"], env=env)
    assert "pho.697@binhphuoc.gov.vn" in listed.output
    bad = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "digest",
            "recipients",
            "add",
            "--unit",
            DISTRICT,
            "--email",
            "not an address",
        ],
        env=env,
    )
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output
    shown = await asyncio.to_thread(
        runner.invoke, app, ["digest", "preview", "--unit", DISTRICT, "--out", str(out)], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert "Bản tin tuần" in out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in out.read_text(encoding="utf-8")


async def test_the_change_since_last_week_and_a_claim_left_by_a_crash(ddb: Database) -> None:
    """Last week's sent digest stored its score: this week's mail says the change. A claim
    left `sending` by a crash is sent again once stale (same Message-ID), not while fresh."""
    from ioc.digest.service import Recipient, message_id

    async with ddb.session() as s:
        score = (await build_digest(s, DISTRICT, WEEK)).score
        assert score is not None
        await s.execute(
            text(
                "INSERT INTO digest_sends (email, unit_code, week_start, state, sent_at, "
                "scorecard_total) VALUES ('cu.697@binhphuoc.gov.vn', :u, :w, 'sent', now(), :t)"
            ),
            {"u": DISTRICT, "w": WEEK - timedelta(days=7), "t": score - 2.5},
        )
        for email, age in (("crash.697@binhphuoc.gov.vn", 20), ("busy.697@binhphuoc.gov.vn", 1)):
            await add_recipient(s, DISTRICT, email, None)
            await s.execute(
                text(
                    "INSERT INTO digest_sends (email, unit_code, week_start, state, claimed_at, "
                    "attempts) VALUES (:e, :u, :w, 'sending', now() - make_interval(mins => :m), 1)"
                ),
                {"e": email, "u": DISTRICT, "w": WEEK, "m": age},
            )
    sink = SmtpSink()
    sink.start()
    try:
        settings = settings_for(smtp_host="127.0.0.1", smtp_port=sink.port)
        await send_week(ddb, settings, WEEK)
        await send_week(ddb, settings, WEEK)
    finally:
        sink.stop()
    to = sorted(str(m["To"]) for m in sink.messages)
    # The crashed claim is retried; the fresh one (another replica still sending) is left;
    # the head served earlier is not sent again. (The CLI test's added recipient is served.)
    assert "busy.697@binhphuoc.gov.vn" not in to and HEAD not in to
    assert to.count("crash.697@binhphuoc.gov.vn") == 1
    crash = next(m for m in sink.messages if m["To"] == "crash.697@binhphuoc.gov.vn")
    assert crash["Message-ID"] == (
        f"<{message_id(Recipient(DISTRICT, 'crash.697@binhphuoc.gov.vn', None), WEEK)}@ioc.digest>"
    )
    plain = crash.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "so với tuần trước: +2,5 điểm" in plain.get_content()
    async with ddb.session() as s:
        states = dict(
            (
                await s.execute(
                    text(
                        "SELECT email, state FROM digest_sends WHERE week_start = :w "
                        "AND email IN ('crash.697@binhphuoc.gov.vn', 'busy.697@binhphuoc.gov.vn')"
                    ),
                    {"w": WEEK},
                )
            ).all()
        )
    assert states == {"crash.697@binhphuoc.gov.vn": "sent", "busy.697@binhphuoc.gov.vn": "sending"}


async def test_send_now_from_the_command_line_sends_once(ddb: Database) -> None:
    """`ioc digest send --now`: the new recipient gets last week's digest; a second run, none."""
    async with ddb.session() as s:
        await add_recipient(s, COMMUNE, "now.25432@binhphuoc.gov.vn", None)
    sink = SmtpSink()
    sink.start()
    env = {
        "IOC_DATABASE_URL": ddb.url,
        "IOC_SMTP_HOST": "127.0.0.1",
        "IOC_SMTP_PORT": str(sink.port),
        "IOC_SMTP_FROM": "ioc@binhphuoc.gov.vn",
    }
    runner = CliRunner()
    try:
        first = await asyncio.to_thread(runner.invoke, app, ["digest", "send", "--now"], env=env)
        again = await asyncio.to_thread(runner.invoke, app, ["digest", "send", "--now"], env=env)
        refused = await asyncio.to_thread(runner.invoke, app, ["digest", "send"], env=env)
    finally:
        sink.stop()
    assert first.exit_code == 0, first.output
    assert again.exit_code == 0 and "0 digests sent" in again.output, again.output
    assert refused.exit_code == 2 and "--now" in refused.output
    to = [str(m["To"]) for m in sink.messages]
    assert to.count("now.25432@binhphuoc.gov.vn") == 1
    assert f"{len(to)} digests sent" in first.output


async def test_a_run_whose_claim_was_taken_over_does_not_mark_the_row(ddb: Database) -> None:
    """A run paused past the stale limit finds its claim taken by another run: its late
    `failed` must not undo the other run's `sent` (which would send a third time)."""
    from ioc.digest.service import Recipient, _claim, _mark

    me = Recipient(OTHER, "cham.25433@binhphuoc.gov.vn", None)
    week = WEEK - timedelta(days=14)
    mine = datetime.now(UTC) - timedelta(minutes=30)
    assert await _claim(ddb, me, week, mine)
    theirs = datetime.now(UTC)
    assert await _claim(ddb, me, week, theirs)  # stale: taken over
    await _mark(ddb, me, week, theirs, "sent", total=50.0)
    await _mark(ddb, me, week, mine, "failed", error="late")
    async with ddb.session() as s:
        row = (
            await s.execute(
                text("SELECT state, attempts FROM digest_sends WHERE email = :e"), {"e": me.email}
            )
        ).one()
    assert row == ("sent", 2)
