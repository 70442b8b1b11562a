"""The engine as a running loop service: records committed while a round runs (their
`NOTIFY ioc_ingest` arriving mid-round) are folded in by the next round at once, not at the
next tick (here an hour away)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from ioc.db import Database
from ioc.kpis import KpiEngine
from ioc.localtime import LOCAL_TZ

from .conftest import add_dossier, kpi_events_since, last_event_seq


class _Engine(KpiEngine):
    rounds = 0

    async def run_once(self) -> None:
        self.rounds += 1
        await super().run_once()
        if self.rounds == 1:
            # What the ingest does while the round runs: commit, then NOTIFY -> on_ingest.
            async with self.db.session() as s:
                await add_dossier(s, "25195", datetime.now(LOCAL_TZ))
            self.on_ingest("dossiers")


async def test_a_wake_during_a_round_starts_the_next_round_at_once(own_db: Database) -> None:
    seq = await last_event_seq(own_db)
    engine = _Engine(own_db, loop_seconds=3600)
    engine.start()
    try:
        for _ in range(600):
            events = [
                e
                for e in await kpi_events_since(own_db, seq)
                if e.unit_code == "25195" and e.subject == "dossier_received"
            ]
            if events:
                break
            await asyncio.sleep(0.05)
    finally:
        await engine.stop()
    assert engine.rounds == 2
    assert {e.time_window: e.payload["kpi"]["value"] for e in events} == {
        "today": 1.0,
        "7d": 1.0,
        "month": 1.0,
        "quarter": 1.0,
        "year": 1.0,
    }
