"""Roll-up: a unit's rate is the sum of its communes' numerators over the sum of their
denominators (never an average of rates); the median is the median of all records below."""

from __future__ import annotations

from ioc.db import Database
from ioc.kpis import snapshot

from .conftest import add_dossier, add_report, at, by_id, engine_round

NOW = at(2026, 6, 10, 12)


async def test_rates_roll_up_as_sums(kdb: Database) -> None:
    async with kdb.session() as s:
        # 25216: 1 online of 4; 25217: 9 online of 10; 25219: 0 online of 2 (district 688).
        for i in range(4):
            await add_dossier(s, "25216", at(2026, 6, 2, 8 + i), channel=2 if i == 0 else 1)
        for i in range(10):
            await add_dossier(s, "25217", at(2026, 6, 3, 8, i), channel=2 if i < 9 else 3)
        for i in range(2):
            await add_dossier(s, "25219", at(2026, 6, 4, 8, i))
        # Responses: 25216 after 1, 2 and 3 hours; 25217 after 10 hours.
        for h in (1, 2, 3):
            await add_report(s, "25216", at(2026, 6, 5, 8), first_response_at=at(2026, 6, 5, 8 + h))
        await add_report(s, "25217", at(2026, 6, 5, 8), first_response_at=at(2026, 6, 5, 18))
    await engine_round(kdb, NOW)
    async with kdb.session() as s:
        district = await snapshot(s, "688", "month", now=NOW, children=True)
    rate = by_id(district.kpis)["dossier_online_rate"]
    assert (rate.numerator, rate.denominator, rate.value) == (10.0, 16.0, 0.625)
    kids = {c.unit: by_id(c.kpis) for c in district.children}
    assert [
        (kids[u]["dossier_online_rate"].numerator, kids[u]["dossier_online_rate"].denominator)
        for u in ("25216", "25217", "25219")
    ] == [(1.0, 4.0), (9.0, 10.0), (0.0, 2.0)]
    assert kids["25219"]["dossier_online_rate"].value == 0.0
    assert kids["25219"]["dossier_online_rate"].status == "bad"
    p50 = by_id(district.kpis)["report_response_p50_hours"]
    # Median of 1, 2, 3, 10 hours: 2.5 (not the median of the communes' medians, 6).
    assert (p50.value, p50.denominator) == (2.5, 4.0)
    assert kids["25216"]["report_response_p50_hours"].value == 2.0
    assert kids["25217"]["report_response_p50_hours"].value == 10.0
