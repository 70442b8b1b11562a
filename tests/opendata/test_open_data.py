"""The open-data export: per unit and month, the KPIs' values as hand counts, a licence line,
and nothing personal — no citizen's name, phone or address, no record id (the test scans for
every field of the personal-data list and every value the fixture's citizens carry)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import httpx
import pytest

from ioc.collectors.service import ingest_json
from ioc.db import Database
from ioc.privacy import PERSONAL_FIELDS
from tests.collectors.factories import dossier, report
from tests.conftest import DatabaseFactory, ServerMaker
from tests.kpis.conftest import at, engine_round
from tests.live.conftest import token_for

COMMUNE, DISTRICT = "25432", "697"
CITIZENS = ["Nguyễn Thị Hồng Nhung", "0912345678", "Trần Văn Bình", "0987654321", "Tổ 3, ấp 2"]
RECORD_IDS = ["OD-HS-1", "OD-HS-2", "OD-HS-3", "OD-PA-1"]


@pytest.fixture(scope="module")
async def od_url(databases: DatabaseFactory) -> AsyncIterator[str]:
    url = await databases.create()
    db = Database(url, pool_size=2)
    try:
        async with db.session() as s:
            # February: two dossiers at the commune (one online), March: one in person.
            records = [
                dossier("OD-HS-1", MaDonVi=COMMUNE, KenhThucHien=2, NgayTiepNhan="20260203090000",
                        SoDienThoai="0912345678", DiaChi="Tổ 3, ấp 2"),
                dossier("OD-HS-2", MaDonVi=COMMUNE, KenhThucHien=1, NgayTiepNhan="20260210090000"),
                dossier("OD-HS-3", MaDonVi=COMMUNE, KenhThucHien=1, NgayTiepNhan="20260302090000"),
            ]  # fmt: skip
            accepted = await ingest_json(s, "dossiers", "od-portal", records)
            assert accepted.rejected == []
            hotline = [
                report("OD-PA-1", unit=COMMUNE, received_at="2026-02-04T09:00:00+07:00",
                       citizen_name="Trần Văn Bình", citizen_phone="0987654321"),
            ]  # fmt: skip
            assert (await ingest_json(s, "reports", "od-hotline", hotline)).rejected == []
        await engine_round(db, at(2026, 3, 10, 10))
    finally:
        await db.close()
    yield url


def table(body: str) -> tuple[str, list[dict[str, str]]]:
    licence, _, rest = body.lstrip("\ufeff").partition("\r\n")
    return licence, list(csv.DictReader(io.StringIO(rest)))


async def test_csv_needs_a_token_and_equals_hand_counts(
    make_server: ServerMaker, od_url: str
) -> None:
    server = await make_server(url=od_url, alerts_enabled=False, feeds_enabled=False)
    db = Database(od_url, pool_size=1)
    try:
        operator = await token_for(db, "operator", DISTRICT)
    finally:
        await db.close()
    params = {"unit": DISTRICT, "from": "2026-01", "to": "2026-03"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get("/api/v1/open-data/kpis.csv", params=params)).status_code == 401
        got = await http.get(
            "/api/v1/open-data/kpis.csv", params=params,
            headers={"Authorization": f"Bearer {operator}"},
        )  # fmt: skip
        outside = await http.get(
            "/api/v1/open-data/kpis.csv", params={"unit": "70"},
            headers={"Authorization": f"Bearer {operator}"},
        )  # fmt: skip
    assert outside.status_code == 403
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    licence, rows = table(got.text)
    assert licence.startswith("# Giấy phép CC BY 4.0")
    cell = {(r["unit_code"], r["month"], r["kpi"]): r for r in rows}
    assert cell[(COMMUNE, "2026-02", "dossier_received")]["numerator"] == "2"
    assert cell[(COMMUNE, "2026-02", "dossier_online_rate")]["value"] == "0.5"
    assert cell[(COMMUNE, "2026-03", "dossier_received")]["numerator"] == "1"
    assert cell[(DISTRICT, "2026-02", "dossier_received")]["numerator"] == "2"  # rolled up
    assert cell[(COMMUNE, "2026-02", "report_received")]["numerator"] == "1"
    assert {r["unit_code"] for r in rows} == {DISTRICT, COMMUNE}  # units with records only
    scan(got.text)


async def test_json_is_public_when_configured(make_server: ServerMaker, od_url: str) -> None:
    server = await make_server(
        url=od_url, alerts_enabled=False, feeds_enabled=False, open_data_public=True,
        open_data_unit="70",
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        got = await http.get("/api/v1/open-data/kpis.json", params={"from": "2026-02"})
        bad = await http.get("/api/v1/open-data/kpis.json", params={"from": "February"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["unit"] == "70" and body["licence"].startswith("Giấy phép CC BY 4.0")
    province = {(r["month"], r["kpi"]): r for r in body["rows"] if r["unit_code"] == "70"}
    assert province[("2026-02", "dossier_received")]["numerator"] == 2
    assert set(body["rows"][0]) == {
        "unit_code", "unit_name", "unit_level", "month", "kpi", "kpi_name_vi", "kpi_name_en",
        "value", "numerator", "denominator",
    }  # fmt: skip
    assert bad.status_code == 422 and "month" in bad.json()["detail"]
    scan(got.text)


def scan(text: str) -> None:
    """Nothing of the personal-data list, nothing a citizen gave, no record id."""
    lowered = text.lower()
    leaked = [f for f in PERSONAL_FIELDS if f.lower() in lowered]
    assert leaked == []
    assert [v for v in CITIZENS + RECORD_IDS if v in text] == []
