"""Records filed under a unit code that the 2025 reform replaced count under its successor,
also when the reform is loaded after the records (the engine notices the new unit tree)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ioc.db import Database
from ioc.kpis import kpi_value
from ioc.units import load_units_csv

from .conftest import add_dossier, at, engine_round, kpi_events_since, last_event_seq

DATA = Path(__file__).resolve().parents[2] / "ioc" / "units" / "data"
NOW = at(2026, 3, 15, 10)


async def received(db: Database, unit: str) -> float | None:
    async with db.session() as s:
        return (await kpi_value(s, "dossier_received", unit, "month", now=NOW)).value


async def test_successor_after_merge(own_db: Database) -> None:
    async with own_db.session() as s:
        # 25198 (Tân Đồng) and 25213 merged into 25195 on 1 July 2025; 25207 into 25210.
        await add_dossier(s, "25198", at(2026, 3, 10), channel=2)
        await add_dossier(s, "25213", at(2026, 3, 11))
        await add_dossier(s, "25195", at(2026, 3, 12))
        await add_dossier(s, "25207", at(2026, 3, 13))
    await engine_round(own_db, NOW)
    assert await received(own_db, "25195") == 1.0
    assert await received(own_db, "689") == 4.0

    async with own_db.session() as s:
        await load_units_csv(s, DATA / "units-75-dongnai-2025.csv", valid_from=date(2025, 7, 1))
        await load_units_csv(s, DATA / "units-70-to-75-2025-mapping.csv")
    seq = await last_event_seq(own_db)
    result = await engine_round(own_db, NOW)
    assert result.rebuilt
    assert await received(own_db, "25195") == 3.0  # itself, 25198 and 25213
    assert await received(own_db, "25210") == 1.0  # 25207
    assert await received(own_db, "75") == 4.0
    assert await received(own_db, "70") == 4.0  # the old tree still rolls up too
    events = await kpi_events_since(own_db, seq)
    moved = {
        (e.unit_code, e.payload["kpi"]["value"])
        for e in events
        if e.subject == "dossier_received" and e.time_window == "month"
    }
    assert {("25195", 3.0), ("25210", 1.0), ("75", 4.0)} <= moved

    # New records under an old code keep counting under the successor.
    async with own_db.session() as s:
        await add_dossier(s, "25201", at(2026, 3, 14), channel=2)
    await engine_round(own_db, NOW)
    assert await received(own_db, "25195") == 4.0
    assert await received(own_db, "75") == 5.0
