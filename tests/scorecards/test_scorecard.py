"""The 766 scorecard computed by hand for a small fixture (docs/scorecards.md).

Now is Tuesday 10 March 2026, 10:00 local; February 2026 is closed. Commune C1 = 25432 and
C2 = 25433 (district 697, province 70). Tết 2026: 16–20 February are not working days.
Scoring: full points at or above the threshold, else value × points / threshold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ioc.db import Database
from ioc.scorecards import read_scorecard
from ioc.scorecards.models import IndicatorValueIn, Scorecard
from ioc.scorecards.periods import period_of
from ioc.scorecards.scoring import score_of
from ioc.scorecards.service import enter_value, recompute
from tests.conftest import DatabaseFactory
from tests.kpis.conftest import add_dossier, add_report, at, engine_round

NOW = at(2026, 3, 10, 10)
C1, C2, DISTRICT, PROVINCE = "25432", "25433", "697", "70"


@pytest.fixture(scope="module")
async def sdb(databases: DatabaseFactory) -> AsyncIterator[Database]:
    url = await databases.create()
    database = Database(url, pool_size=4)
    async with database.session() as s:
        # d1: online, finished early with an electronic result, digitised, paid online, data
        # reused, VNeID — every indicator's numerator.
        await add_dossier(
            s, C1, at(2026, 2, 3, 9), channel=2, status=10, finished_at=at(2026, 2, 5, 9),
            due_at=at(2026, 2, 10, 17), result_files=1, e_result=True, digitized=True,
            fee_total=50000, paid_online=True, data_reused=True, vneid_verified=True,
        )  # fmt: skip
        # d2: in person, finished after its due date, paper result, a fee not paid online.
        await add_dossier(
            s, C1, at(2026, 2, 4, 9), channel=1, status=10, finished_at=at(2026, 2, 20, 9),
            due_at=at(2026, 2, 12, 17), result_files=1, e_result=False, fee_total=50000,
        )  # fmt: skip
        # d3: online, on time, no result document, digitised, free.
        await add_dossier(
            s, C1, at(2026, 2, 9, 9), channel=2, status=10, finished_at=at(2026, 2, 11, 9),
            due_at=at(2026, 2, 13, 17), digitized=True,
        )  # fmt: skip
        # d4: in person, on time, nothing else.
        await add_dossier(
            s, C1, at(2026, 2, 10, 9), channel=1, status=10, finished_at=at(2026, 2, 12, 9),
            due_at=at(2026, 2, 20, 17),
        )  # fmt: skip
        # C2's only dossier: online, on time, digitised, VNeID; C2 has no citizen reports.
        await add_dossier(
            s, C2, at(2026, 2, 5, 9), channel=2, status=10, finished_at=at(2026, 2, 6, 9),
            due_at=at(2026, 2, 10, 17), digitized=True, vneid_verified=True,
        )  # fmt: skip
        # Reports of C1: r1 resolved in 3 days (on time); r2 refused after 5 working days
        # (late: 2 allowed); r3 resolved on time but rated dissatisfied.
        await add_report(s, C1, at(2026, 2, 2, 9), status="resolved", resolved_at=at(2026, 2, 5, 9))
        await add_report(
            s, C1, at(2026, 2, 3, 9), status="rejected", rejected_at=at(2026, 2, 10, 9)
        )
        await add_report(
            s, C1, at(2026, 2, 4, 9), status="resolved", resolved_at=at(2026, 2, 6, 9),
            rating="dissatisfied",
        )  # fmt: skip
        # March (the current month): one open dossier within its deadline.
        await add_dossier(s, C1, at(2026, 3, 2, 9), status=4, due_at=at(2026, 3, 20, 17))
    await engine_round(database, NOW)
    yield database
    await database.close()


async def card(db: Database, unit: str, period: str) -> Scorecard:
    async with db.session() as s:
        return await read_scorecard(s, unit, period, now=NOW)


def indicators(sc: Scorecard) -> dict[str, Any]:
    return {i.id: i for g in sc.groups for i in g.indicators}


def groups(sc: Scorecard) -> dict[str, tuple[float, float]]:
    return {g.id: (round(g.score, 6), g.max) for g in sc.groups}


def test_scoring_rule() -> None:
    assert score_of(0.5, 12, 0.5) == 12  # at the threshold: full points
    assert score_of(0.9, 20, 1.0) == pytest.approx(18)  # 0.9 × 20 / 1
    assert score_of(0.4, 4, 0.8) == pytest.approx(2)  # below 80 %: 0.4 × 4 / 0.8
    assert score_of(None, 6, 1.0) is None


def test_periods() -> None:
    assert period_of("2026-11").start.isoformat() == "2026-11-01"
    assert period_of("2026-Q4").end.isoformat() == "2026-12-31"
    assert period_of("2024-02").end.isoformat() == "2024-02-29"
    assert period_of("month", NOW).name == "2026-03"
    assert period_of("quarter", NOW).name == "2026-Q1"
    for bad in ("2026-13", "2026-Q5", "26-11", "0001", "last"):
        with pytest.raises(Exception, match="period"):
            period_of(bad, NOW)


async def test_commune_february_by_hand(sdb: Database) -> None:
    sc = await card(sdb, C1, "2026-02")
    assert sc.closed and sc.version == 1 and sc.kind == "month"
    ind = indicators(sc)
    # 2.1: ended in February d1 ✓ d2 ✗ d3 ✓ d4 ✓ → 3/4, × 20 / 1.0 = 15.
    assert (ind["i766_2_1"].numerator, ind["i766_2_1"].denominator) == (3, 4)
    assert ind["i766_2_1"].score == pytest.approx(15)
    # 3.3 is a province indicator (METRICS "Tỉnh"): not applicable to a commune, full 12.
    assert ind["i766_3_3"].source == "not_applicable" and ind["i766_3_3"].score == 12
    assert ind["i766_3_3"].value == pytest.approx(0.5)  # still shown: d1, d3 of 4
    # 3.6: paid online d1 / fee-bearing d1, d2 → 0.5 × 6 = 3.
    assert ind["i766_3_6"].score == pytest.approx(3)
    # 4.1: electronic result d1 / result documents d1, d2 → 0.5 × 6 = 3.
    assert ind["i766_4_1"].score == pytest.approx(3)
    # 4.2: d1, d3 of 4 = 0.5 < 0.8 → 0.5 × 4 / 0.8 = 2.5; 4.3: d1 of 4 → 0.25 × 2 / 0.8.
    assert ind["i766_4_2"].score == pytest.approx(2.5)
    assert ind["i766_4_3"].score == pytest.approx(0.625)
    # 5.2: ended r1 ✓ r2 ✗ r3 ✓ → 2/3 × 6 = 4; 5.3: r1 only → 1/3 × 6 = 2;
    # 5.4 = 2.1's 0.75 < 0.9 → 0.75 × 6 / 0.9 = 5.
    assert ind["i766_5_2"].score == pytest.approx(4)
    assert ind["i766_5_3"].score == pytest.approx(2)
    assert ind["i766_5_4"].score == pytest.approx(5)
    # Entered indicators never entered: missing, 0 points, still counted in the maximum.
    for missing in ("i766_1_1", "i766_1_2", "i766_1_3", "i766_1_4", "i766_3_5", "i766_4_4"):
        assert ind[missing].source == "missing" and ind[missing].score == 0
    # 3.1 is a figure of now: a closed month has no value; it carries no points.
    assert ind["i766_3_1"].value is None and ind["i766_3_1"].points == 0
    assert groups(sc) == {
        "1": (0, 18), "2": (15, 20), "3": (12, 12), "3b": (3, 10),
        "4": (10.125, 22), "5": (11, 18),
    }  # fmt: skip
    assert sc.total == pytest.approx(51.125)
    assert sc.max == 100


async def test_no_reports_share_5_3_points(sdb: Database) -> None:
    sc = await card(sdb, C2, "2026-02")
    ind = indicators(sc)
    # No report: 5.3's 6 points go 3 to 5.2 and 3 to 5.4 (METRICS row 23); 5.2 has nothing
    # to judge either, so its 9 points leave the maximum; 5.4 = 2.1's 1/1 → 9.
    assert ind["i766_5_3"].points == 0
    assert ind["i766_5_2"].points == 9 and ind["i766_5_2"].score is None
    assert ind["i766_5_4"].points == 9 and ind["i766_5_4"].score == 9
    # 3.6 and 4.1 have no fee-bearing dossier / result document: out of the maximum.
    assert sc.max == 100 - 6 - 6 - 9
    assert sc.total == pytest.approx(20 + 12 + 4 + 0 + 2 + 2 + 9)


async def test_province_by_hand_and_children_ranked(sdb: Database) -> None:
    sc = await card(sdb, PROVINCE, "2026-02")
    ind = indicators(sc)
    # At the province 3.3 and 4.5 apply: online d1 d3 e1 of 5 = 0.6 ≥ 0.5 → 12;
    # population data d1 e1 of 5 = 0.4 → 0.8. 2.1 = 4/5 → 16; 5.4 = 0.8 → 0.8 × 6 / 0.9.
    assert ind["i766_3_3"].source == "computed" and ind["i766_3_3"].score == 12
    assert ind["i766_4_5"].score == pytest.approx(0.8)
    assert ind["i766_4_5a"].source == "missing" and ind["i766_4_5a"].score == 0
    assert ind["i766_2_1"].score == pytest.approx(16)
    assert sc.total == pytest.approx(16 + 12 + 3 + (3 + 3 + 0.5 + 0.8) + (4 + 2 + 0.8 * 6 / 0.9))
    # Children (the districts) ranked by total: 697 holds every record.
    ranks = [c.rank for c in sc.children]
    assert ranks == list(range(1, len(sc.children) + 1))
    totals = [c.total for c in sc.children]
    assert totals == sorted(totals, reverse=True)
    assert sc.children[0].unit == DISTRICT
    district = await card(sdb, DISTRICT, "2026-02")
    assert sc.children[0].total == pytest.approx(district.total)
    assert [c.unit for c in district.children[:2]] == [C1, C2]  # 51.125 > 49


async def test_closed_month_does_not_move_until_recomputed(sdb: Database) -> None:
    before = await card(sdb, C1, "2026-02")
    async with sdb.session() as s:  # a late February dossier, in person and late
        await add_dossier(
            s, C1, at(2026, 2, 24, 9), channel=1, status=10, finished_at=at(2026, 2, 27, 9),
            due_at=at(2026, 2, 25, 17),
        )  # fmt: skip
    await engine_round(sdb, NOW)
    again = await card(sdb, C1, "2026-02")
    assert again.total == before.total and again.version == 1
    async with sdb.session() as s:
        out = await recompute(s, C1, "2026-02", by="test")
    assert out.version == 2 and out.previous_total == pytest.approx(before.total)
    changed = {c["indicator"]: c for c in out.changed}
    assert changed["i766_2_1"]["value"] == [pytest.approx(0.75), pytest.approx(0.6)]  # 3/5
    assert "i766_1_1" not in changed
    after = await card(sdb, C1, "2026-02")
    assert after.version == 2 and after.total == pytest.approx(out.total)
    assert after.total < before.total


async def test_entered_value_appears_with_its_source(sdb: Database) -> None:
    async with sdb.session() as s:
        await enter_value(
            s,
            IndicatorValueIn(indicator="i766_1_1", unit=PROVINCE, period="2026-03", value=0.9),
            by="Sở Nội vụ",
            source="api",
        )
        # A yearly value applies to each month of its year; a newer entry supersedes.
        for value in (0.5, 1.0):
            await enter_value(
                s,
                IndicatorValueIn(
                    indicator="i766_1_4", unit=PROVINCE, period="2026", value=value, note="DVCQG"
                ),
                by="Sở Nội vụ",
                source="api",
            )
    sc = await card(sdb, PROVINCE, "month")
    assert not sc.closed and sc.period == "2026-03"
    ind = indicators(sc)
    assert ind["i766_1_1"].source == "entered" and ind["i766_1_1"].value == 0.9
    assert ind["i766_1_1"].score == pytest.approx(0.9 * 6)
    assert ind["i766_1_1"].entered is not None and ind["i766_1_1"].entered.by == "Sở Nội vụ"
    assert ind["i766_1_4"].value == 1.0 and ind["i766_1_4"].entered.period == "2026"  # type: ignore[union-attr]
    # The current month is live: March's open dossier is within its deadline (1/1).
    assert ind["i766_2_1"].value == 1.0


async def test_an_entered_value_must_be_valid(sdb: Database) -> None:
    cases = [
        ({"indicator": "nope", "unit": C1, "period": "2026-02", "value": 1}, "no indicator"),
        ({"indicator": "i766_1_1", "unit": C1, "period": "2026-02", "value": 85}, "fraction"),
        ({"indicator": "dti", "unit": PROVINCE, "period": "2026-02", "value": 0.5}, "per year"),
        ({"indicator": "pci", "unit": PROVINCE, "period": "2025", "value": 101}, "at most 100"),
    ]
    for body, reason in cases:
        async with sdb.session() as s:
            with pytest.raises(Exception, match=reason):
                await enter_value(s, IndicatorValueIn(**body), by="t", source="api")


async def test_a_value_entered_for_a_closed_month_recomputes_it(sdb: Database) -> None:
    before = await card(sdb, C2, "2026-02")
    async with sdb.session() as s:
        await enter_value(
            s,
            IndicatorValueIn(indicator="i766_4_4", unit=C2, period="2026-02", value=1.0),
            by="Sở Nội vụ",
            source="api",
        )
    after = await card(sdb, C2, "2026-02")
    assert after.version == (before.version or 0) + 1
    assert after.total == pytest.approx(before.total + 4)
    assert indicators(after)["i766_4_4"].source == "entered"


def test_the_month_closes_at_its_cron_moment() -> None:
    from ioc.scorecards.loops import MonthCloser
    from tests.conftest import test_settings

    nowhere = Database("postgresql://x@127.0.0.1/x")  # never connected: the schedule alone
    closer = MonthCloser(nowhere, test_settings())
    # Default 00:15 on the 1st, Asia/Ho_Chi_Minh: February closes on 1 March at 00:15 local.
    assert closer.due(at(2026, 3, 1, 0, 14)) is None
    due = closer.due(at(2026, 3, 1, 0, 15))
    assert due is not None and due.name == "2026-02"
    assert closer.due(at(2026, 3, 20, 9)).name == "2026-02"  # type: ignore[union-attr]
    closer.closed = "2026-02"
    assert closer.due(at(2026, 3, 20, 9)) is None
    other = MonthCloser(nowhere, test_settings(scorecard_close_cron="0 6 2 * *"))
    assert other.due(at(2026, 3, 2, 5, 59)) is None
    assert other.due(at(2026, 3, 2, 6)).name == "2026-02"  # type: ignore[union-attr]


def test_a_wrong_close_schedule_is_refused() -> None:
    from ioc.settings import Settings

    with pytest.raises(Exception, match="crontab"):
        Settings(scorecard_close_cron="every month")


async def test_the_demo_enters_its_values_once(databases: DatabaseFactory) -> None:
    from ioc.scorecards import ensure_demo_values

    url = await databases.create()
    db = Database(url, pool_size=1)
    try:
        async with db.session() as s:
            first = await ensure_demo_values(s)
        async with db.session() as s:
            assert await ensure_demo_values(s) == 0
            sc = await read_scorecard(s, PROVINCE, "month")
            ranked = await read_scorecard(s, DISTRICT, "month")
    finally:
        await db.close()
    assert first > 20
    group_1 = next(g for g in sc.groups if g.id == "1")
    assert all(i.source == "entered" for i in group_1.indicators)
    assert group_1.indicators[0].entered.note.startswith("Số liệu mô phỏng")  # type: ignore[union-attr]
    assert next(g for g in ranked.groups if g.id == "1").score > 0
