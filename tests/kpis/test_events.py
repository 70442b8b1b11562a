"""A dossier moving from open to finished late: on-time rate and overdue count change, and
one `kpi` event per changed (unit, window, kpi) is published in the engine's transaction."""

from __future__ import annotations

from ioc.db import Database
from ioc.kpis import snapshot

from .conftest import (
    add_dossier,
    at,
    by_id,
    engine_round,
    kpi_events_since,
    last_event_seq,
    update_dossier,
)

NOW = at(2026, 3, 15, 10)


async def test_open_to_finished_late(kdb: Database) -> None:
    async with kdb.session() as s:
        on_time = await add_dossier(
            s, "25333", at(2026, 3, 2), due_at=at(2026, 3, 9), finished_at=at(2026, 3, 9)
        )
        late = await add_dossier(s, "25333", at(2026, 3, 3), status=4, due_at=at(2026, 3, 10))
    assert on_time < late
    await engine_round(kdb, NOW)
    async with kdb.session() as s:
        before = by_id((await snapshot(s, "25333", "month", now=NOW)).kpis)
    assert (before["dossier_ontime_rate"].numerator, before["dossier_ontime_rate"].denominator) == (
        1.0,
        1.0,
    )
    assert before["dossier_ontime_rate"].status == "ok"
    assert before["dossier_overdue_open"].value == 1.0

    seq = await last_event_seq(kdb)
    async with kdb.session() as s:
        await update_dossier(s, late, status=9, finished_at=at(2026, 3, 12, 16))
    result = await engine_round(kdb, NOW)
    assert result.records == 1
    async with kdb.session() as s:
        after = by_id((await snapshot(s, "25333", "month", now=NOW)).kpis)
    assert (after["dossier_ontime_rate"].numerator, after["dossier_ontime_rate"].denominator) == (
        1.0,
        2.0,
    )
    assert after["dossier_ontime_rate"].status == "bad"
    assert after["dossier_overdue_open"].value == 0.0

    events = await kpi_events_since(kdb, seq)
    commune = {(e.time_window, e.subject): e for e in events if e.unit_code == "25333"}
    # Finished 12 March: in 7d (9..15 March), month, quarter, year; not today. The 766
    # on-time rate (and 5.4) counted it open and late in every window: it now ends late on
    # 12 March, which changes only today's (0/1 → no data).
    assert sorted(commune) == sorted(
        [(w, "dossier_ontime_rate") for w in ("7d", "month", "quarter", "year")]
        + [(w, "dossier_overdue_open") for w in ("today", "7d", "month", "quarter", "year")]
        + [("today", "i766_2_1"), ("today", "i766_5_4")]
    )
    assert {e.unit_code for e in events} == {"25333", "690", "70"}
    assert len(events) == 33
    event = commune[("month", "dossier_ontime_rate")]
    assert event.payload == {
        "unit": "25333",
        "window": "month",
        "as_of": "2026-03-15T10:00:00+07:00",
        "kpi": {
            "id": "dossier_ontime_rate",
            "value": 0.5,
            "numerator": 1.0,
            "denominator": 2.0,
            "target": 0.95,
            "status": "bad",
        },
    }

    # Nothing changed since: another round emits nothing.
    seq = await last_event_seq(kdb)
    await engine_round(kdb, NOW)
    assert await kpi_events_since(kdb, seq) == []


async def test_unchanged_rewrite_emits_nothing(kdb: Database) -> None:
    """A record re-stamped without a change to what it contributes moves no value."""
    async with kdb.session() as s:
        d = await add_dossier(s, "25336", at(2026, 3, 14), channel=2)
    await engine_round(kdb, NOW)
    seq = await last_event_seq(kdb)
    async with kdb.session() as s:
        await update_dossier(s, d, sector_name="Tư pháp")
    result = await engine_round(kdb, NOW)
    assert result.records == 1
    assert await kpi_events_since(kdb, seq) == []
