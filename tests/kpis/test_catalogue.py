"""Every KPI of docs/api.md §4 on a small hand-counted fixture, at commune, district, province.

Now is 2026-03-15 10:00 local. Communes 25195 and 25198 are in district 689, 25320 in 690.
"""

from __future__ import annotations

from datetime import date

import pytest

from ioc.db import Database
from ioc.kpis import CATALOGUE, kpi_value, series, snapshot

from .conftest import (
    add_document,
    add_dossier,
    add_procedure,
    add_report,
    at,
    by_id,
    engine_round,
)

NOW = at(2026, 3, 15, 10, 0)


@pytest.fixture(scope="module")
async def loaded(kdb: Database) -> Database:
    async with kdb.session() as s:
        # Online services of 25195: PA and PB online, PC at the desk only.
        await add_procedure(s, "25195", "PA", True)
        await add_procedure(s, "25195", "PB", True)
        await add_procedure(s, "25195", "PC", False)
        # D1 today, online, digitised, paid online.
        await add_dossier(
            s,
            "25195",
            at(2026, 3, 15, 8),
            channel=2,
            digitized=True,
            paid_online=True,
            procedure_code="PA",
        )
        # D2 today, at the desk, digitised.
        await add_dossier(s, "25195", at(2026, 3, 15, 9), channel=1, digitized=True)
        # D3 yesterday, online (PB), finished today before its due date: on time.
        await add_dossier(
            s,
            "25195",
            at(2026, 3, 14, 9),
            channel=2,
            procedure_code="PB",
            due_at=at(2026, 3, 16, 17),
            finished_at=at(2026, 3, 15, 8),
        )
        # D4 received 1 March, due 10 March, finished 12 March: late.
        await add_dossier(
            s,
            "25195",
            at(2026, 3, 1, 9),
            due_at=at(2026, 3, 10, 17),
            finished_at=at(2026, 3, 12, 9),
        )
        # D5 by post, open, due yesterday: overdue now.
        await add_dossier(
            s, "25195", at(2026, 3, 2, 9), channel=3, status=4, due_at=at(2026, 3, 14, 17)
        )
        # D6 withdrawn (status 7) with a past due date: neither open nor finished.
        await add_dossier(s, "25195", at(2026, 3, 3, 9), status=7, due_at=at(2026, 3, 5, 17))
        # D7 today, online (PA), open, due later.
        await add_dossier(
            s,
            "25195",
            at(2026, 3, 15, 7),
            channel=2,
            status=4,
            procedure_code="PA",
            due_at=at(2026, 3, 20, 17),
        )
        # Reports of 25195.
        await add_report(  # R1 today, answered after 2 h, in progress
            s,
            "25195",
            at(2026, 3, 15, 8),
            status="in_progress",
            first_response_at=at(2026, 3, 15, 10),
            due_at=at(2026, 3, 20),
        )
        await add_report(  # R2 today, answered after 8 h, resolved on time today
            s,
            "25195",
            at(2026, 3, 15, 1),
            status="resolved",
            first_response_at=at(2026, 3, 15, 9),
            resolved_at=at(2026, 3, 15, 9, 30),
            due_at=at(2026, 3, 16),
        )
        await add_report(  # R3 answered after 24 h, resolved late on 14 March
            s,
            "25195",
            at(2026, 3, 10, 8),
            status="resolved",
            first_response_at=at(2026, 3, 11, 8),
            resolved_at=at(2026, 3, 14, 8),
            due_at=at(2026, 3, 12),
        )
        await add_report(s, "25195", at(2026, 3, 12, 8), due_at=at(2026, 3, 13))  # R4 overdue
        await add_report(  # R5 rejected: neither open nor resolved
            s, "25195", at(2026, 3, 13, 8), status="rejected", due_at=at(2026, 3, 14)
        )
        # Documents: Doc1 25195 → 25198, electronic, due 14 March, not completed: overdue
        # at 25198. Doc2 25195 → 25320 on paper, completed. Doc3 from an unmapped organ to
        # 25195 and 25198, due 20 March.
        await add_document(
            s, "25195", at(2026, 3, 15, 8), [("25198", None)], due_on=date(2026, 3, 14)
        )
        await add_document(
            s, "25195", at(2026, 3, 13, 8), [("25320", at(2026, 3, 14))], electronic=False
        )
        await add_document(
            s,
            None,
            at(2026, 3, 15, 9),
            [("25195", None), ("25198", None), (None, None)],
            due_on=date(2026, 3, 20),
        )
    await engine_round(kdb, NOW)
    return kdb


def fractions(kpis: list) -> dict[str, tuple]:
    """The plain KPIs' fractions (the Decision 766 indicators: test_i766.py; the reports of
    agencies: tests/agency_reports/test_kpis.py)."""
    return {
        k.id: (k.numerator, k.denominator) if k.denominator is not None else k.value
        for k in kpis
        if not k.id.startswith(("i766_", "agency_report_"))
    }


async def test_commune_today(loaded: Database) -> None:
    async with loaded.session() as s:
        snap = await snapshot(s, "25195", "today", now=NOW)
    got = by_id(snap.kpis)
    assert [k.id for k in snap.kpis] == list(CATALOGUE)
    assert fractions(snap.kpis) == {
        "dossier_received": 3.0,
        "dossier_online_rate": (2.0, 3.0),
        "dossier_ontime_rate": (1.0, 1.0),
        "dossier_overdue_open": 1.0,
        "dossier_digitized_rate": (2.0, 3.0),
        "dossier_online_payment_rate": (1.0, 2.0),
        "online_service_usage_rate": (1.0, 2.0),
        "report_received": 2.0,
        "report_ontime_rate": (1.0, 1.0),
        "report_overdue_open": 1.0,
        "report_response_p50_hours": (None, 2.0),
        "document_electronic_rate": (2.0, 2.0),
        "document_overdue_open": 0.0,
    }
    assert got["report_response_p50_hours"].value == 5.0  # median of 2 h and 8 h
    assert got["dossier_online_rate"].value == 2 / 3
    assert got["dossier_online_rate"].status == "ok"  # 0.667 ≥ 0.50 + 5 %
    assert got["dossier_digitized_rate"].status == "bad"  # below 1.00
    assert got["dossier_overdue_open"].status == "bad"  # 1 > 0
    assert got["document_overdue_open"].status == "ok"
    assert got["dossier_received"].status == "ok"


async def test_commune_month(loaded: Database) -> None:
    async with loaded.session() as s:
        snap = await snapshot(s, "25195", "month", now=NOW)
    got = by_id(snap.kpis)
    assert fractions(snap.kpis) == {
        "dossier_received": 7.0,
        "dossier_online_rate": (3.0, 7.0),  # D1, D3, D7 of 7
        "dossier_ontime_rate": (1.0, 2.0),  # D3 on time, D4 late
        "dossier_overdue_open": 1.0,
        "dossier_digitized_rate": (2.0, 7.0),
        "dossier_online_payment_rate": (1.0, 3.0),
        "online_service_usage_rate": (2.0, 2.0),  # PA and PB both used
        "report_received": 5.0,
        "report_ontime_rate": (1.0, 2.0),
        "report_overdue_open": 1.0,
        "report_response_p50_hours": (None, 3.0),
        "document_electronic_rate": (2.0, 3.0),
        "document_overdue_open": 0.0,
    }
    assert got["report_response_p50_hours"].value == 8.0  # median of 2, 8, 24 h
    assert got["report_response_p50_hours"].status == "ok"
    assert got["report_ontime_rate"].status == "bad"


async def test_seven_days(loaded: Database) -> None:
    async with loaded.session() as s:
        snap = await snapshot(s, "25195", "7d", now=NOW)
    f = fractions(snap.kpis)
    assert f["dossier_received"] == 4.0  # D1, D2, D3, D7 (9..15 March)
    assert f["dossier_online_rate"] == (3.0, 4.0)
    assert f["dossier_ontime_rate"] == (1.0, 2.0)  # D4 finished on the 12th
    assert f["report_received"] == 5.0  # R1..R5, all since the 10th


async def test_district_and_province(loaded: Database) -> None:
    async with loaded.session() as s:
        district = await snapshot(s, "689", "month", now=NOW, children=True)
        province = await snapshot(s, "70", "month", now=NOW)
    d = fractions(district.kpis)
    assert d["dossier_received"] == 7.0
    # Doc1 and Doc3 involve both 25195 and 25198: counted once each at the district.
    assert d["document_electronic_rate"] == (2.0, 3.0)
    assert d["document_overdue_open"] == 1.0  # Doc1 at 25198
    kids = {c.unit: fractions(c.kpis) for c in district.children}
    assert len(kids) == 8
    assert kids["25198"]["document_electronic_rate"] == (2.0, 2.0)  # Doc1, Doc3
    assert kids["25198"]["document_overdue_open"] == 1.0
    assert kids["25198"]["dossier_online_rate"] == (0.0, 0.0)
    assert (
        by_id(next(c for c in district.children if c.unit == "25198").kpis)[
            "dossier_online_rate"
        ].status
        == "no_data"
    )
    assert next(c for c in district.children if c.unit == "25195").name == "Phường Tân Phú"
    p = fractions(province.kpis)
    assert p["document_electronic_rate"] == (2.0, 3.0)
    assert p["online_service_usage_rate"] == (2.0, 2.0)
    assert p["report_response_p50_hours"] == (None, 3.0)


async def test_kpi_value_and_no_data(loaded: Database) -> None:
    async with loaded.session() as s:
        v = await kpi_value(s, "dossier_online_rate", "689", "today", now=NOW)
        empty = await kpi_value(s, "report_response_p50_hours", "690", "year", now=NOW)
        count = await kpi_value(s, "dossier_received", "690", "year", now=NOW)
    assert (v.value, v.numerator, v.denominator, v.target, v.status) == (2 / 3, 2.0, 3.0, 0.5, "ok")
    assert (empty.value, empty.denominator, empty.status) == (None, 0.0, "no_data")
    assert (count.value, count.status) == (0.0, "ok")


async def test_snapshot_json_shape(loaded: Database) -> None:
    async with loaded.session() as s:
        snap = await snapshot(s, "689", "today", now=NOW, children=True)
    body = snap.model_dump(mode="json")
    assert set(body) == {"unit", "window", "as_of", "kpis", "children"}
    assert body["as_of"] == "2026-03-15T10:00:00+07:00"
    assert set(body["kpis"][0]) == {"id", "value", "numerator", "denominator", "target", "status"}
    assert set(body["children"][0]) == {"unit", "name", "kpis"}


async def test_series(loaded: Database) -> None:
    async with loaded.session() as s:
        usage = await series(
            s, "online_service_usage_rate", "25195", date(2026, 3, 13), date(2026, 3, 15)
        )
        month = await series(
            s,
            "online_service_usage_rate",
            "689",
            date(2026, 3, 1),
            date(2026, 3, 31),
            step="month",
        )
        p50 = await series(
            s, "report_response_p50_hours", "25195", date(2026, 3, 10), date(2026, 3, 15)
        )
        online = await series(s, "dossier_online_rate", "70", date(2026, 3, 15), date(2026, 3, 15))
    assert [(p.period.day, p.numerator, p.denominator) for p in usage.points] == [
        (13, 0.0, 2.0),
        (14, 1.0, 2.0),  # PB (D3)
        (15, 1.0, 2.0),  # PA (D1, D7)
    ]
    assert [(p.period, p.value) for p in month.points] == [(date(2026, 3, 1), 1.0)]
    assert [(p.period.day, p.value, p.denominator) for p in p50.points] == [
        (10, 24.0, 1.0),
        (11, None, 0.0),
        (12, None, 0.0),
        (13, None, 0.0),
        (14, None, 0.0),
        (15, 5.0, 2.0),
    ]
    assert [(p.numerator, p.denominator) for p in online.points] == [(2.0, 3.0)]
    assert online.target == 0.5
