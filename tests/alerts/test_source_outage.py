"""A KPI whose sources are all down cannot be evaluated (issue 22, item 6, alerts side):
its alerts show the error state, a firing one stays firing (never resolved by an outage),
and the outage's end sends nothing (no storm). Real PostgreSQL, the evaluator's rounds."""

from __future__ import annotations

from sqlalchemy import text

from ioc.alerts import list_open_alerts
from ioc.db import Database
from tests.alerts.conftest import evaluate, make_rule, publish_kpi


async def sources(db: Database, failures: int) -> None:
    async with db.session() as session:
        await session.execute(text("DELETE FROM source_cursors WHERE source LIKE 'outage-%'"))
        await session.execute(
            text(
                "INSERT INTO source_cursors (source, feed, last_success_at, consecutive_failures)"
                " VALUES ('outage-portal-a', 'dossiers', now() - interval '5 minutes', :n),"
                "        ('outage-portal-b', 'dossiers', now() - interval '9 minutes', :n),"
                "        ('outage-hotline', 'reports', now(), 0)"
            ),
            {"n": failures},
        )


async def states(db: Database) -> dict[str, tuple[str, str | None]]:
    async with db.session() as session:
        alerts = await list_open_alerts(session, "70")
        every = (await session.execute(text("SELECT id, state FROM alerts"))).all()
    found = {a["rule_name"]: (a["state"], a.get("no_data_reason")) for a in alerts}
    return found | {f"#{row.id}": (row.state, None) for row in every if row.state == "ok"}


async def notifications(db: Database) -> int:
    async with db.session() as session:
        return int(
            (await session.execute(text("SELECT count(*) FROM alert_notifications"))).scalar_one()
        )


async def test_a_source_outage_is_the_error_state_and_its_end_is_no_storm(adb: Database) -> None:
    try:
        await make_rule(adb, name="đúng hạn", kpi="dossier_ontime_rate")
        await make_rule(adb, name="trực tuyến", kpi="dossier_online_rate", op="<", threshold=0.5)
        await make_rule(adb, name="phản ánh", kpi="report_ontime_rate", op="<", threshold=0.9)
        await publish_kpi(adb, "dossier_ontime_rate", "689", 0.5)  # breach: fires
        await publish_kpi(adb, "dossier_online_rate", "689", 0.8)  # fine
        await publish_kpi(adb, "report_ontime_rate", "689", 0.95)  # fine
        await sources(adb, failures=0)
        await evaluate(adb)
        before = await states(adb)
        assert before["đúng hạn"][0] == "firing"
        sent = await notifications(adb)
        assert sent == 1

        await sources(adb, failures=5)  # every portal source failing
        await evaluate(adb, later=1)
        during = await states(adb)
        assert during["đúng hạn"][0] == "firing"  # an outage never resolves
        assert (during["đúng hạn"][1] or "").startswith("error: source outage-portal-a")
        assert during["trực tuyến"][0] == "no_data"
        assert "outage-portal-a, outage-portal-b failing since" in (during["trực tuyến"][1] or "")
        assert "phản ánh" not in during  # its feed (reports) is up: still ok
        await publish_kpi(adb, "dossier_online_rate", "689", 0.1)  # a reading during it
        await evaluate(adb, later=2)
        assert (await states(adb))["trực tuyến"][0] == "no_data"  # an error never fires

        await sources(adb, failures=0)  # back
        await evaluate(adb, later=3)
        after = await states(adb)
        assert after["đúng hạn"] == ("firing", None)
        # back on the last figures read while the source was up (0.8: fine); the reading
        # taken while it was down did not count, and nothing was sent: no storm
        assert "trực tuyến" not in after and len(after) == 3
        assert await notifications(adb) == sent
    finally:
        async with adb.session() as session:
            await session.execute(text("DELETE FROM source_cursors WHERE source LIKE 'outage-%'"))
