"""Every branch of the median code (`ioc.kpis.median`) reached through the engine's public
entries, on realistic data: rounds (`engine_round`: emit, commit, fold, with the memory kept
between rounds) and `snapshot` — served from what the engine stored (medians from its
memory, narrowed by hour bins) and recomputed from the aggregates (a moment before the last
round: medians over whole lists). Each equals PostgreSQL's `percentile_cont(0.5)` over the
raw reports (the naive oracle).

The district 689 holds ~3,100 reports in March: people answering within hours (exponential,
mean 90 min, stamped to the second) in three communes, a busy commune whose reports are all
acknowledged by a machine exactly 2 minutes after reception (ties: the district's median is
one of them), a few answered before they were received (bad source data: negative times) or
days later; district 690 a few dozen over the month; district 691 none. So a subtree's
middle hour is crowded (selection steps below and above the pivot, and a pivot repeated
across the rank), a commune is one list (indexed directly), a sparse middle hour is sorted,
and some units have no median. (Checked: this test alone executes every statement of
`median.py`.)"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import text

from ioc.db import Database
from ioc.kpis import snapshot
from ioc.kpis.rounds import MemoryBox
from ioc.localtime import WINDOWS

from .conftest import at, engine_round
from .naive import naive_values

NOW = at(2026, 3, 15, 10)
UNITS = ["70", "689", "690", "691", "25195", "25198", "25205", "25207", "25210", "25320"]


def _reports(seed: int) -> list[tuple[str, datetime, float]]:
    """(commune, received at, response seconds) for March up to NOW."""
    rng = random.Random(seed)
    start = at(2026, 3, 1)
    span = (NOW - start).total_seconds()

    def received() -> datetime:
        return start + timedelta(seconds=round(rng.random() * span))

    out = []
    for commune in ("25198", "25201", "25204"):  # people: minutes to hours
        out += [(commune, received(), round(rng.expovariate(1 / 5400))) for _ in range(500)]
    out += [("25195", received(), 120.0) for _ in range(1600)]  # a machine's acknowledgement
    out += [("25207", received(), -float(rng.randint(60, 900))) for _ in range(7)]
    out += [("25210", received(), float(rng.randint(49, 96) * 3600)) for _ in range(25)]
    out += [("25205", received(), float(rng.randint(60, 7200))) for _ in range(3)]
    for commune in ("25320", "25324", "25325"):  # district 690: a few a week
        out += [(commune, received(), float(rng.randint(600, 40 * 3600))) for _ in range(13)]
    return out


async def _insert(db: Database, reports: list[tuple[str, datetime, float]], tag: str) -> None:
    async with db.session() as s:
        await s.execute(
            text(
                """
                INSERT INTO reports (source, source_id, received_at, channel, category,
                    unit_code, unit_ref, status, first_response_at, source_updated_at, raw,
                    change_seq)
                SELECT 't', :tag || '-' || r.n, r.at, 'phone', 'other', r.u, r.u, 'assigned',
                       r.at + r.secs * interval '1 second', now(), '{}',
                       nextval('record_change_seq')
                FROM unnest(CAST(:u AS text[]), CAST(:at AS timestamptz[]),
                            CAST(:secs AS float8[])) WITH ORDINALITY AS r(u, at, secs, n)
                """
            ),
            {
                "tag": tag,
                "u": [u for u, _, _ in reports],
                "at": [a for _, a, _ in reports],
                "secs": [x for _, _, x in reports],
            },
        )


async def _medians(db: Database, now: datetime) -> dict[tuple[str, str], tuple[object, object]]:
    """(unit, window) -> the median's (value, denominator) as `snapshot` gives it at `now`."""
    out = {}
    async with db.session() as s:
        for unit in UNITS:
            for window in WINDOWS:
                found = await snapshot(s, unit, window, now=now)
                k = next(k for k in found.kpis if k.id == "report_response_p50_hours")
                out[(unit, window)] = (k.value, k.denominator)
    return out


async def _oracle(db: Database) -> dict[tuple[str, str], tuple[object, object]]:
    out = {}
    async with db.session() as s:
        for window in WINDOWS:
            found = await naive_values(s, UNITS, window, NOW)
            for unit in UNITS:
                r = found[unit]["report_response_p50_hours"]
                out[(unit, window)] = (r.value, r.denominator)
    return out


async def test_medians_through_the_engine(own_db: Database) -> None:
    reports = _reports(seed=766)
    random.Random(1).shuffle(reports)
    half = len(reports) // 2
    await _insert(own_db, reports[:half], "first")
    box = MemoryBox()
    await engine_round(own_db, NOW - timedelta(hours=1), box)  # loads, then folds
    await _insert(own_db, reports[half:], "second")
    await engine_round(own_db, NOW, box)  # moves the memory kept from the round before

    expected = await _oracle(own_db)
    assert await _medians(own_db, NOW) == expected  # served: from the engine's memory
    assert await _medians(own_db, NOW - timedelta(minutes=30)) == expected  # recomputed
    # the machine-stamped commune: every one of its times is 2 minutes
    assert expected[("25195", "month")] == (120 / 3600, 1600.0)
    assert expected[("691", "year")] == (None, 0.0)
    assert expected[("689", "month")] == (120 / 3600, 3135.0)
