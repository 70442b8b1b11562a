"""Evaluation against the real database: KPI events move alerts through their lifecycle."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ioc.alerts import list_open_alerts
from ioc.alerts.models import RuleIn, RulePatch
from ioc.alerts.rules import create_rule, delete_rule, update_rule
from ioc.db import Database
from ioc.errors import Invalid
from ioc.events import read_since
from tests.alerts.conftest import evaluate, make_rule, publish_kpi


async def test_event_fires_and_publishes_alert_event(adb: Database) -> None:
    rule, _ = await make_rule(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.9103, numerator=9103, denominator=10000)
    result = await evaluate(adb)
    assert (result.events, result.transitions, result.notifications) == (1, 1, 1)
    async with adb.session() as session:
        open_alerts = await list_open_alerts(session, "70")
        events = await read_since(session, 0, types=["alert"])
    assert len(open_alerts) == 1
    alert = open_alerts[0]
    assert alert["state"] == "firing"
    assert alert["rule_id"] == rule.id
    assert alert["unit"] == "689"
    assert alert["unit_name"] == "Thành phố Đồng Xoài"
    assert alert["value"] == 0.9103
    assert alert["threshold"] == 0.95
    assert alert["severity"] == "critical"
    assert [e.payload["alert"]["state"] for e in events] == ["firing"]
    assert events[0].subject == str(rule.id)
    assert events[0].unit_code == "689"
    async with adb.session() as session:
        assert await list_open_alerts(session, "688") == []


async def test_for_seconds_pending_then_firing_on_tick(adb: Database) -> None:
    await make_rule(adb, for_seconds=60)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    async with adb.session() as session:
        assert [a["state"] for a in await list_open_alerts(session, "689")] == ["pending"]
    await evaluate(adb, later=30)  # the tick alone, before for_seconds
    async with adb.session() as session:
        assert [a["state"] for a in await list_open_alerts(session, "689")] == ["pending"]
    result = await evaluate(adb, later=61)
    assert (result.events, result.transitions, result.notifications) == (0, 1, 1)
    async with adb.session() as session:
        assert [a["state"] for a in await list_open_alerts(session, "689")] == ["firing"]


async def test_hysteresis_flapping_sends_nothing_new(adb: Database) -> None:
    await make_rule(adb, threshold=0.90, clear_threshold=0.95)
    for value in (0.85, 0.92, 0.88, 0.94, 0.89, 0.93):
        await publish_kpi(adb, "dossier_ontime_rate", "689", value)
        await evaluate(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.96)
    await evaluate(adb)
    async with adb.session() as session:
        kinds = (
            (await session.execute(text("SELECT kind FROM alert_notifications ORDER BY id")))
            .scalars()
            .all()
        )
        transitions = (
            (await session.execute(text("SELECT to_state FROM alert_transitions ORDER BY id")))
            .scalars()
            .all()
        )
    assert kinds == ["firing", "resolved"]
    assert transitions == ["firing", "resolved"]


async def test_no_data_is_its_own_state_and_never_resolves(adb: Database) -> None:
    await make_rule(adb, unit="70", each_child=True)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.5)
    await publish_kpi(adb, "dossier_ontime_rate", "688", None)
    await evaluate(adb)
    async with adb.session() as session:
        states = {a["unit"]: a["state"] for a in await list_open_alerts(session, "70")}
    assert states["689"] == "firing"
    assert states["688"] == "no_data"
    await publish_kpi(adb, "dossier_ontime_rate", "689", None)
    await evaluate(adb)
    async with adb.session() as session:
        states = {a["unit"]: a["state"] for a in await list_open_alerts(session, "70")}
        kinds = (
            (await session.execute(text("SELECT kind FROM alert_notifications"))).scalars().all()
        )
    assert states["689"] == "firing"
    assert kinds == ["firing"]


async def test_no_data_fires_when_the_rule_says_so(adb: Database) -> None:
    await make_rule(adb, no_data_fires=True)
    await publish_kpi(adb, "dossier_ontime_rate", "689", None)
    await evaluate(adb)
    async with adb.session() as session:
        alerts = await list_open_alerts(session, "689")
    assert [(a["state"], a["value"]) for a in alerts] == [("firing", None)]


async def test_moving_or_deleting_a_rule_closes_its_alerts(adb: Database) -> None:
    rule, _ = await make_rule(adb)
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.80)
    await evaluate(adb)
    async with adb.session() as session:
        await update_rule(
            session, rule.id, RulePatch(threshold=0.85), scope_unit="689", allow_private=True
        )
    # an edited rule is re-decided on the alert's last reading, without a new KPI event
    assert (await evaluate(adb)).transitions == 0  # 0.80 < 0.85: still firing
    async with adb.session() as session:
        await update_rule(
            session, rule.id, RulePatch(threshold=0.5), scope_unit="689", allow_private=True
        )
    assert (await evaluate(adb)).notifications == 1  # 0.80 ≥ 0.5: resolved
    async with adb.session() as session:
        assert await list_open_alerts(session, "689") == []
        moved = await update_rule(
            session, rule.id, RulePatch(unit="25195"), scope_unit="689", allow_private=True
        )
        assert moved.unit_code == "25195"
        await delete_rule(session, rule.id, by="Trưởng phòng")
        events = await read_since(session, 0, types=["alert"])
        kinds = (
            (await session.execute(text("SELECT kind FROM alert_notifications ORDER BY id")))
            .scalars()
            .all()
        )
    assert [e.payload["alert"]["state"] for e in events] == ["firing", "resolved", "closed"]
    assert kinds == ["firing", "resolved"]  # closing is not a recovery: nobody is told
    await publish_kpi(adb, "dossier_ontime_rate", "689", 0.10)
    assert (await evaluate(adb)).transitions == 0  # a deleted rule is not evaluated


async def test_webhook_targets_on_private_addresses_are_refused(adb: Database) -> None:
    async with adb.session() as session:
        with pytest.raises(Invalid) as refused:
            await create_rule(
                session,
                RuleIn(
                    name="x",
                    kpi="dossier_ontime_rate",
                    unit="689",
                    window="month",
                    op="<",
                    threshold=0.9,
                    recipients=[{"channel": "webhook", "url": "http://127.0.0.1:8080/hook"}],
                ),
                scope_unit="689",
                created_by="test",
                allow_private=False,
            )
    assert refused.value.errors is not None
    assert [e["field"] for e in refused.value.errors] == ["recipients.0.url"]
