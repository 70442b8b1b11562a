"""Property: after any sequence of inserts, updates (including a record going back to an
older version of itself) and engine rounds, the incremental aggregates equal (a) the naive
GROUP BY over the raw records for every KPI, unit and window, and (b) a rebuild from scratch;
and what snapshots serve from `kpi_current` (without recomputing) equals a recomputation from
the aggregates, at the round's moment, later the same day (records having become overdue in
between, with no round) and after a target change."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ioc.db import Database
from ioc.kpis import refresh
from ioc.kpis.aggregates import clear
from ioc.kpis.compute import compute, judged
from ioc.kpis.current import current_of
from ioc.kpis.memory import EngineMemory
from ioc.kpis.reads import served, values_for
from ioc.kpis.rounds import MemoryBox, fresh_memory, rebuild_aggregates
from ioc.kpis.targets import set_target
from ioc.localtime import WINDOWS, local_date

from .conftest import (
    add_agency_report,
    add_document,
    add_dossier,
    add_procedure,
    add_report,
    at,
    complete_recipient,
    engine_round,
    update_agency_report,
    update_dossier,
    update_report,
)
from .naive import naive_values

NOW = at(2026, 3, 15, 10)
# Later the same local day, with no engine round in between: open records due in
# (NOW, LATER] have become overdue since the engine stored its counts.
TARGET_AT = at(2026, 3, 15, 11)
LATER = at(2026, 3, 15, 18)
# Before every moment drawn: the engine's clock at the start of an example.
START = NOW - timedelta(days=101)
OVERDUE = ["dossier_overdue_open", "report_overdue_open", "document_overdue_open"]
UNITS = ["25195", "25198", "25320", "689", "70"]
CHECKED = ["70", "689", "690", "25195", "25198", "25320"]

# Moments from early December to now, with local midnights and month starts over-weighted,
# and a few later today (due moments that pass between NOW and LATER).
moments = st.one_of(
    st.integers(min_value=0, max_value=100 * 24).map(lambda h: NOW - timedelta(hours=h)),
    st.sampled_from(
        [
            at(2026, 3, 15),
            at(2026, 3, 14, 23, 59, 59),
            at(2026, 3, 9),
            at(2026, 3, 8, 23, 59, 59),
            at(2026, 3, 1),
            at(2026, 2, 28, 23, 59, 59),
            at(2026, 1, 1),
            at(2025, 12, 31, 23, 59, 59),
            at(2026, 3, 15, 10),
            at(2026, 3, 15, 10, 30),
            at(2026, 3, 15, 17, 59, 59),
            at(2026, 3, 15, 18),
        ]
    ),
)
maybe = st.none() | moments
unit = st.sampled_from(UNITS)

dossier = st.fixed_dictionaries(
    {
        "unit": unit,
        "received_at": moments,
        "channel": st.integers(1, 3),
        "due_at": maybe,
        "finished_at": maybe,
        "status": st.integers(1, 10),
        "digitized": st.booleans(),
        "paid_online": st.booleans(),
        "procedure_code": st.sampled_from(["P1", "P2", "P3"]),
        # the Decision 766 facts (docs/indicators-766.md)
        "accepted": st.booleans(),
        "closed_at": maybe,
        "refused_at": maybe,
        "supplement_count": st.integers(0, 2),
        "supplement_requested_at": maybe,
        "supplement_seconds": st.sampled_from([0, 3600, 3 * 86400]),
        "due_moved_at": maybe,
        "result_files": st.integers(0, 2),
        "e_result": st.booleans(),
        "fee_total": st.sampled_from([0, 50000]),
        "data_reused": st.booleans(),
        "vneid_verified": st.booleans(),
        "national_db_used": st.booleans(),
    }
)
report = st.fixed_dictionaries(
    {
        "unit": unit,
        "received_at": moments,
        "status": st.sampled_from(["received", "assigned", "in_progress", "resolved", "rejected"]),
        "due_at": maybe,
        "first_response_at": maybe,
        "resolved_at": maybe,
        "rating": st.sampled_from([None, "satisfied", "dissatisfied"]),
        "rejected_at": maybe,
    }
)
document = st.fixed_dictionaries(
    {
        "sender": st.none() | unit,
        "sent_at": moments,
        "recipients": st.lists(st.tuples(st.none() | unit, maybe), max_size=3),
        "electronic": st.booleans(),
        "due_on": st.none() | moments.map(lambda m: m.date()),
        "completed_at": maybe,
    }
)
# A report of an agency: due after it is requested; filed (online or on paper) or not.
agency_report = st.fixed_dictionaries(
    {
        "unit": unit,
        "requested_at": moments,
        "due_at": moments,
        "status": st.sampled_from(["requested", "filed", "accepted", "cancelled"]),
        "filed_at": maybe,
        "channel": st.sampled_from(["online", "paper"]),
    }
).map(
    lambda a: {
        **a,
        "due_at": max(a["due_at"], a["requested_at"]),
        "filed_at": None if a["status"] == "requested" else a["filed_at"],
        "channel": None if a["status"] == "requested" or a["filed_at"] is None else a["channel"],
    }
)
operation = st.one_of(
    st.tuples(st.just("dossier"), dossier),
    st.tuples(st.just("update_dossier"), st.integers(0, 50), dossier),
    st.tuples(st.just("report"), report),
    st.tuples(st.just("update_report"), st.integers(0, 50), report),
    st.tuples(st.just("document"), document),
    st.tuples(st.just("complete"), st.integers(0, 50), maybe),
    st.tuples(st.just("agency_report"), agency_report),
    st.tuples(st.just("update_agency_report"), st.integers(0, 50), agency_report),
    st.tuples(
        st.just("procedure"),
        unit,
        st.sampled_from(["P1", "P2", "P3"]),
        st.booleans(),
        st.sampled_from([None, 0.5, 1, 5, 15]),  # legal duration (working days)
    ),
    # A round at a moment (the engine's clock never goes back: the round runs at the latest
    # of the moments drawn so far, at most NOW): due moments and local midnights pass
    # between rounds, so the engine's memory (overdue heap, windows) is moved over time,
    # across days.
    st.tuples(st.just("round"), moments),
)

RAW_TABLES = "dossiers, reports, documents, document_recipients, procedures, agency_reports"
AGGREGATES = [
    "kpi_counts",
    "kpi_open",
    "kpi_service",
    "kpi_service_day",
    "kpi_service_usage",
    "kpi_dossier_proj",
    "kpi_report_proj",
    "kpi_document_proj",
    "kpi_agency_report_proj",
]


def _memory_state(m: EngineMemory) -> dict[str, Any]:
    """What the memory says, in a form two memories can be compared by (entries that net to
    zero dropped, response times as sorted multisets per window)."""
    due: dict[tuple[Any, ...], int] = {}
    for at_, u, f, n in m.due_heap:
        due[(at_, u, f)] = due.get((at_, u, f), 0) + n
    return {
        "counts": m.counts.tolist(),
        "resp": [{u: r.secs for u, r in by_unit.items() if r.secs} for by_unit in m.resp],
        "resp_hist": [{u: h for u, h in by_unit.items() if any(h)} for by_unit in m.resp_hist],
        "overdue": {k: v for k, v in m.overdue.items() if v},
        "due": {k: v for k, v in due.items() if v},
        "services": m.services,
        "usage": {u: d for u, d in m.usage.items() if d},
        "targets": m.targets,
        "emitted": m.emitted_values(),
    }


async def _round_exact(db: Database, moment: datetime, box: MemoryBox) -> None:
    """After a round at `moment`: the engine's memory, moved round after round, equals a
    memory loaded afresh from the aggregates, and its values equal a recomputation from the
    aggregates for every checked unit and window."""
    memory = box.memory
    assert memory is not None
    async with db.session() as s:
        fresh = await fresh_memory(s, memory.cursor, memory.generation, moment)
        recomputed = await compute(s, CHECKED, list(WINDOWS), moment, local_date(moment))
    assert _memory_state(memory) == _memory_state(fresh), moment
    assert memory.raws(CHECKED) == recomputed, moment


async def _apply(db: Database, ops: list[tuple[Any, ...]]) -> None:
    clock = START
    box = MemoryBox()
    dossiers: list[int] = []
    reports: list[int] = []
    documents: list[tuple[int, list[str]]] = []
    agency: list[int] = []
    for op in ops:
        async with db.session() as s:
            kind = op[0]
            if kind == "dossier":
                fields = dict(op[1])
                dossiers.append(await add_dossier(s, fields.pop("unit"), **fields))
            elif kind == "update_dossier" and dossiers:
                fields = dict(op[2])
                fields["unit_code"] = fields.pop("unit")
                await update_dossier(s, dossiers[op[1] % len(dossiers)], **fields)
            elif kind == "report":
                fields = dict(op[1])
                reports.append(await add_report(s, fields.pop("unit"), **fields))
            elif kind == "update_report" and reports:
                fields = dict(op[2])
                fields["unit_code"] = fields.pop("unit")
                await update_report(s, reports[op[1] % len(reports)], **fields)
            elif kind == "document":
                d = op[1]
                pk = await add_document(
                    s,
                    d["sender"],
                    d["sent_at"],
                    d["recipients"],
                    electronic=d["electronic"],
                    due_on=d["due_on"],
                    completed_at=d["completed_at"],
                )
                documents.append((pk, [u for u, _ in d["recipients"] if u]))
            elif kind == "complete" and documents:
                pk, units = documents[op[1] % len(documents)]
                if units and op[2] is not None:
                    await complete_recipient(s, pk, units[op[1] % len(units)], op[2])
            elif kind == "agency_report":
                fields = dict(op[1])
                unit_code = fields.pop("unit")
                agency.append(
                    await add_agency_report(
                        s, unit_code, fields.pop("requested_at"), fields.pop("due_at"), **fields
                    )
                )
            elif kind == "update_agency_report" and agency:
                fields = dict(op[2])
                fields["unit_code"] = fields.pop("unit")
                await update_agency_report(s, agency[op[1] % len(agency)], **fields)
            elif kind == "procedure":
                await add_procedure(s, op[1], op[2], op[3], *op[4:])
        if op[0] == "round":
            clock = min(NOW, max(clock, op[1]))
            await engine_round(db, clock, box)
            await _round_exact(db, clock, box)
    await engine_round(db, NOW, box)
    await _round_exact(db, NOW, box)


async def _dump(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    async with db.session() as s:
        return {
            t: {
                tuple(tuple(v) if isinstance(v, list) else v for v in r)
                for r in await s.execute(text(f"SELECT * FROM {t}"))
            }
            for t in AGGREGATES
        }


async def _served_equals_recomputed(db: Database, moment: datetime) -> None:
    """Every (unit, window) is served from `kpi_current` at `moment`, equal to recomputing."""
    async with db.session() as s:
        stored = await served(s, CHECKED, list(WINDOWS), moment, None)
        recomputed = await judged(s, CHECKED, list(WINDOWS), moment, None)
        answered = await values_for(s, CHECKED, list(WINDOWS), moment)
    assert set(stored) == {(u, w) for u in CHECKED for w in WINDOWS}
    for key, values in recomputed.items():
        assert stored[key] == values, key
        assert [tuple(v.model_dump().values()) for v in answered[key]] == values, key


async def _check(url: str, ops: list[tuple[Any, ...]]) -> None:
    db = Database(url, pool_size=2)
    try:
        # Start from nothing (records are never deleted in production: the test resets by
        # truncation, then re-syncs the last emitted values of the units it checks).
        async with db.session() as s:
            await s.execute(text(f"TRUNCATE {RAW_TABLES} CASCADE"))
            await s.execute(text("TRUNCATE kpi_current, kpi_targets"))
            await clear(s)
            # The engine's clock starts before every round of this example.
            await s.execute(text("UPDATE kpi_state SET last_run_at = NULL, last_local_day = NULL"))
            await refresh(s, CHECKED, START, emit=False)
        await _apply(db, ops)
        for window in WINDOWS:
            async with db.session() as s:
                fast = await compute(s, CHECKED, [window], NOW, date(2026, 3, 15))
                slow = await naive_values(s, CHECKED, window, NOW)
            for u in CHECKED:
                assert fast[(u, window)] == slow[u], (u, window)
            # What was emitted (kpi_current) is what the aggregates say.
            async with db.session() as s:
                fresh = await judged(s, CHECKED, [window], NOW, None)
                emitted = {
                    (u, k): j[1:]
                    for (u, w, k), j in (await current_of(s, CHECKED)).items()
                    if w == window
                }
            assert emitted == {(u, v[0]): v[1:] for (u, _), values in fresh.items() for v in values}
        # Snapshots are served from kpi_current, exactly: at the round's moment, later the
        # same day (overdue counts moved with the clock alone), after a target change
        # (stored later than the round), and not at all before the round (recomputed).
        await _served_equals_recomputed(db, NOW)
        await _served_equals_recomputed(db, LATER)
        async with db.session() as s:
            await set_target(s, "689", "dossier_overdue_open", 1.0, now=TARGET_AT)
            await set_target(s, "70", "report_overdue_open", 2.0, now=TARGET_AT)
            await set_target(s, "70", "dossier_online_rate", 0.6, now=TARGET_AT)
            await set_target(s, "689", "i766_2_1", 0.9, now=TARGET_AT)
        await _served_equals_recomputed(db, LATER)
        async with db.session() as s:
            assert await served(s, CHECKED, list(WINDOWS), NOW - timedelta(hours=1), None) == {}
        incremental = await _dump(db)
        async with db.session() as s:
            await rebuild_aggregates(s)
        assert await _dump(db) == incremental
    finally:
        await db.close()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, min_size=1, max_size=20))
def test_incremental_equals_naive_and_rebuild(own_db: Database, ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(_check(own_db.url, ops))


def test_a_known_tricky_sequence(own_db: Database) -> None:
    """A dossier that moves commune, finishes, then reverts to an older open version; one
    that becomes overdue between two rounds; responses either side of local midnight."""
    d1 = {
        "unit": "25195",
        "received_at": at(2026, 3, 14, 23, 59, 59),
        "channel": 2,
        "due_at": at(2026, 3, 15),
        "finished_at": None,
        "status": 4,
        "digitized": True,
        "paid_online": True,
        "procedure_code": "P1",
    }
    later = {**d1, "unit": "25320", "finished_at": at(2026, 3, 15, 9), "status": 9}
    ops: list[tuple[Any, ...]] = [
        ("procedure", "25195", "P1", True),
        ("procedure", "25320", "P1", True),
        ("dossier", d1),
        # open, due between the next two rounds: overdue at the second by the clock alone
        ("dossier", {**d1, "unit": "25198", "due_at": at(2026, 3, 15, 5)}),
        ("round", at(2026, 3, 14, 23, 59, 59)),
        ("update_dossier", 0, later),
        ("round", at(2026, 3, 15, 9)),
        ("update_dossier", 0, d1),
        # open, due between NOW and LATER: overdue at LATER with no round in between
        ("dossier", {**d1, "due_at": at(2026, 3, 15, 12), "digitized": False}),
        # responded, received either side of the last local midnight, folded in by a round
        # on the same day as the previous one: the current windows' histogram is moved
        (
            "report",
            {
                "unit": "25195",
                "received_at": at(2026, 3, 14, 23, 59, 59),
                "status": "resolved",
                "due_at": None,
                "first_response_at": at(2026, 3, 15, 2),
                "resolved_at": at(2026, 3, 15, 3),
            },
        ),
        (
            "report",
            {
                "unit": "25320",
                "received_at": at(2026, 3, 15),
                "status": "in_progress",
                "due_at": None,
                "first_response_at": at(2026, 3, 15, 7, 30),
                "resolved_at": None,
            },
        ),
        (
            "report",
            {
                "unit": "25198",
                "received_at": at(2026, 3, 15, 9),
                "status": "assigned",
                "due_at": at(2026, 3, 15, 17, 59, 59),
                "first_response_at": None,
                "resolved_at": None,
            },
        ),
    ]
    asyncio.run(_check(own_db.url, ops))
