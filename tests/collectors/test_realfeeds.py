"""Records as real one-stop systems send them (tests/samples/README.md says whose shape each
sample is): accepted as sent, read into the columns the 766 indicators need."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from ioc.collectors import ingest_json, ingest_xml, list_dead_letters, replay_dead_letters
from ioc.collectors.dossiers import (
    _checked_dossier,
    _plain_dossier,
    envelope_unit,
    organ_prefix,
    parse_dossier,
    parse_step,
    unwrap,
)
from ioc.collectors.edxml import normalise_document_id, parse_status, parse_xml
from ioc.collectors.procedures import parse_procedure
from ioc.collectors.records import DossierRecord, ProgressStep, Rejection, ReportRecord
from ioc.collectors.reports import parse_report, unit_places
from ioc.db import Database, current_heads, downgrade, script_heads, upgrade
from ioc.db.engine import asyncpg_dsn
from ioc.privacy import mask_record

from ..conftest import DatabaseFactory, TokenMaker
from .factories import dossier, fetch, new_source, value

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VN = "+07:00"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text + VN)


def parsed(items: list[Any], envelope: str | None = None) -> list[DossierRecord]:
    out = [parse_dossier(i, o, envelope) for i, o in enumerate(items)]
    assert all(isinstance(r, DossierRecord) for r in out), [
        r.errors for r in out if isinstance(r, Rejection)
    ]
    return out  # type: ignore[return-value]


# --- parsing: each sample accepted as sent ----------------------------------------------


def test_opencps_envelope_without_channel_or_unit() -> None:
    body = sample("dvcqg-opencps-dongbohoso.json")
    fmt, items = unwrap(body)
    assert fmt == "dossier" and envelope_unit(body) == "000.00.00.H10"
    first, second = parsed(items, envelope_unit(body))
    # every value a string, no KenhThucHien (in person), no MaDonVi
    assert (first.status, first.channel, second.status, second.channel) == (10, 1, 4, 1)
    assert first.unit_ref == "000.21.17.H10" and not first.unit_given  # the MaHoSo prefix
    assert first.unit_fallbacks == ("000.00.00.H10",)  # then the envelope's madonvi
    assert second.unit_ref == "000.00.00.H10" and second.unit_fallbacks == ()
    # "" dates are absent
    assert second.due_at == t("2026-12-02T16:10:00") and second.finished_at is None
    assert second.returned_at is None and second.refused_at is None
    # a submitted file with a link is a digitised component; a result file with a link
    assert (first.digitized, first.result_files, first.e_result) == (True, 1, True)
    assert (second.digitized, second.result_files, second.e_result) == (False, 0, False)
    assert first.paid_online_code is None and not first.paid_online


def test_thanh_hoa_td_strings_nulls_fees_and_supplements() -> None:
    paid, waiting = parsed(sample("dvcqg-thanhhoa-td.json"))
    assert (paid.channel, waiting.channel) == (2, 1)  # "2"; null = in person
    assert (paid.status, waiting.status) == (10, 5)
    assert paid.digitized and not waiting.digitized  # HoSoCoThanhPhanSoHoa "1" / "0"
    assert (paid.paid_online_code, paid.paid_online) == (1, True)
    assert (waiting.paid_online_code, waiting.paid_online) == (3, False)  # 3 = not online
    assert (paid.fee_total, waiting.fee_total) == (Decimal("8000.00"), Decimal(75000))
    assert paid.data_reused and not waiting.data_reused  # DuocTaiSuDung "1"
    assert paid.national_db_used and not paid.vneid_verified  # DSKetNoiCSDL, VNeID "0"
    assert (paid.result_files, paid.e_result) == (1, True)
    # supplements: .NET DateTime (ISO, no offset = UTC+7) and yyyyMMddHHmmss mixed
    (only,) = paid.supplement_list
    assert only.requested_at == t("2026-11-30T15:00:00")
    assert only.completed_at == t("2026-12-03T08:00:00")
    assert (only.due_before, only.due_after) == (t("2026-12-01T17:00:00"), t("2026-12-04T17:00:00"))
    assert paid.supplement_seconds == (only.completed_at - only.requested_at).total_seconds()
    assert paid.due_moved_at == t("2026-12-04T17:00:00")
    first, second = waiting.supplement_list  # in request order; the second still open
    assert first.requested_at == t("2026-12-02T09:00:00")
    assert second.requested_at == t("2026-12-04T10:30:00") and second.completed_at is None
    assert waiting.supplement_count == 2
    assert waiting.supplement_requested_at == t("2026-12-04T10:30:00")
    assert waiting.supplement_seconds == 24 * 3600  # only the completed pause
    assert waiting.due_moved_at == t("2026-12-23T17:00:00")  # the latest NgayHenTraMoi


def test_ha_giang_admission_needs_the_sending_organ() -> None:
    items = sample("dvcqg-hagiang-tuyensinh.json")
    alone = parse_dossier(0, items[0])
    assert isinstance(alone, Rejection)
    assert alone.errors == [
        "MaDonVi: absent, and neither an organ code prefixing MaHoSo nor the envelope's "
        "madonvi names the unit"
    ]
    (record,) = parsed(items, "000.00.00.H10")  # POST …/ingest/dossiers?madonvi=…
    assert (record.unit_ref, record.channel, record.status, record.due_at) == (
        "000.00.00.H10", 1, 10, None,
    )  # fmt: skip
    assert record.digitized and record.e_result and record.result_files == 1


def test_bad_values_are_precise_reasons() -> None:
    bad = parse_dossier(
        4,
        dossier(
            "X-9", KenhThucHien="9", DuocThanhToanTrucTuyen="5", NgayHenTra="",
            DanhSachLePhi=[{"Gia": "năm mươi nghìn"}],
            DanhSachHoSoBoSung=[{"NgayBoSung": "32/13/2026 08:00"}, "x"],
            TaiLieuNop={"DuocSoHoa": "1"},
        ),
    )  # fmt: skip
    assert isinstance(bad, Rejection) and bad.record_id == "X-9"
    assert bad.errors == [
        "KenhThucHien: unknown code 9 (1 in person, 2 online, 3 postal)",
        "DuocThanhToanTrucTuyen: unknown code 5 (0-3, 1 and 2 paid online)",
        "TaiLieuNop: not a list (got dict)",
        "DanhSachLePhi[0].Gia: 'năm mươi nghìn' is not an amount",
        "DanhSachHoSoBoSung[1]: not an object",
        "DanhSachHoSoBoSung[0].NgayBoSung: '32/13/2026 08:00' is not a valid dd/MM/yyyy HH:mm time",
    ]


def test_strings_booleans_and_older_names() -> None:
    (record,) = parsed(
        [dossier("S-1", KenhThucHien="2", TrangThaiHoSo="9", NgayKetThucXuLy="20260316100000",
                 MucDo="4", DaSoHoa="False", HoSoCoThanhPhanSoHoa="1",
                 TaiKhoanDuocXacThucVoiVNeID="True", DuocThanhToanTrucTuyen="2")]
    )  # fmt: skip
    assert (record.channel, record.status, record.service_level) == (2, 9, 4)
    assert record.digitized and record.vneid_verified and record.paid_online
    assert record.paid_online_code == 2
    (old,) = parsed([dossier("S-2", DaSoHoa=True, ThanhToanTrucTuyen=True)])
    assert old.digitized and old.paid_online and old.paid_online_code is None
    (early,) = parsed([dossier("S-3", DuocThanhToanTrucTuyen=True)])  # an early boolean
    assert early.paid_online and early.paid_online_code is None


def test_organ_prefix() -> None:
    assert organ_prefix("000.21.17.H10-261201-0001") == "000.21.17.H10"
    assert organ_prefix("H56.14-240101-00001") == "H56.14"
    assert organ_prefix("H10-2612-000117") is None
    assert organ_prefix("TS10-2026-000123") is None


def test_opencps_progress_steps_strings_and_blanks() -> None:
    _, items = unwrap(sample("dvcqg-opencps-capnhattiendo.json"))
    asked, back, blank = (parse_step(i, o) for i, o in enumerate(items))
    assert isinstance(asked, ProgressStep) and isinstance(back, ProgressStep)
    assert (asked.status, back.status) == (5, 4)
    assert isinstance(blank, Rejection)  # no action yet: "" time and "" status
    assert blank.errors == ["TrangThai: required (status 1..10)", "ThoiDiemXuLy: required"]


def test_procedure_legal_duration() -> None:
    base = {"MaTTHC": "1.004227", "MaDonVi": "689", "TrucTuyen": "True", "MucDo": "3"}
    plain = parse_procedure(0, {**base, "ThoiGianGiaiQuyet": "15"})
    assert not isinstance(plain, Rejection)
    assert (plain.legal_days, plain.online, plain.service_level) == (Decimal(15), True, 3)
    national = parse_procedure(
        1,
        {**base, "CACHTHUCTHUCHIEN": [
            {"KENH": 1, "THOIGIAN": [{"THOIGIANGIAIQUYET": 12, "DONVITINH": "Ngày làm việc"}]},
            {"KENH": 2, "THOIGIAN": [{"THOIGIANGIAIQUYET": 10, "DONVITINH": "Ngày làm việc"},
                                     {"THOIGIANGIAIQUYET": 4, "DONVITINH": "Giờ"}]},
        ]},
    )  # fmt: skip
    assert not isinstance(national, Rejection) and national.legal_days == Decimal(12)
    none = parse_procedure(2, base)
    assert not isinstance(none, Rejection) and none.legal_days is None
    bad = parse_procedure(3, {**base, "SoNgayGiaiQuyet": "mười"})
    assert isinstance(bad, Rejection)
    assert bad.errors == ["SoNgayGiaiQuyet: 'mười' is not a number of days"]


def test_document_id_in_any_date_order_is_normalised() -> None:
    assert normalise_document_id("000.00.00.H10, 12/03/2026 ,1267/UBND-KGVX") == (
        "000.00.00.H10,2026/03/12,1267/UBND-KGVX"
    )
    for day in ("2026/03/12", "12/03/2026", "2026-03-12", "12-03-2026", "2026/3/12", "20260312"):
        assert normalise_document_id(f"000.00.00.H10,{day},1267/UBND-KGVX") == (
            "000.00.00.H10,2026/03/12,1267/UBND-KGVX"
        )
    assert normalise_document_id("opaque-id") == "opaque-id"
    # the shipped status message, with its DocumentId's date written dd/MM/yyyy
    xml = (SAMPLES / "edxml-status.xml").read_text(encoding="utf-8")
    xml = xml.replace(
        "<edXML:DocumentId>000.00.00.H10,2026/03/12,", "<edXML:DocumentId>000.00.00.H10,12/03/2026,"
    )
    status = parse_status(parse_xml(xml.encode(), max_bytes=1 << 20, max_depth=64), xml)
    assert status.document_id == "000.00.00.H10,2026/03/12,1267/UBND-KGVX"  # type: ignore[union-attr]


# --- the pipeline: stored as the indicators need ----------------------------------------

FACTS = (
    "SELECT source_id, unit_code, channel, digitized, paid_online, paid_online_code, "
    "result_files, e_result, fee_total, data_reused, vneid_verified, national_db_used, "
    "refused_at, closed_at, accepted, supplements, supplement_count, supplement_requested_at, "
    "supplement_seconds, due_moved_at FROM dossiers WHERE source = $1 ORDER BY source_id"
)


async def facts(db: Database, source: str) -> dict[str, Any]:
    return {r["source_id"]: r for r in await fetch(db, FACTS, source)}


async def test_unit_from_madonvi_prefix_or_envelope(db: Database) -> None:
    source = new_source()
    async with db.session() as s:
        given = await ingest_json(s, "dossiers", source, [dossier("HAS-UNIT", MaDonVi="689")])
        sync = await ingest_json(s, "dossiers", source, sample("dvcqg-opencps-dongbohoso.json"))
    assert (given.accepted, sync.accepted, sync.rejected) == (1, 2, [])
    rows = await facts(db, source)
    assert rows["HAS-UNIT"]["unit_code"] == "689"  # MaDonVi
    assert rows["000.21.17.H10-261201-0001"]["unit_code"] == "689"  # organ prefixing MaHoSo
    assert rows["H10-2612-000117"]["unit_code"] == "70"  # the envelope's madonvi


async def test_unmapped_prefix_falls_back_to_the_envelope_else_dead_letter(db: Database) -> None:
    source = new_source()
    body = {
        "madonvi": "000.00.00.H10",
        "service": "DongBoHoSoMC",
        "data": [dossier("000.99.99.H99-261201-0001", MaDonVi="")],
    }
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, body)
    assert (r.accepted, r.rejected) == (1, [])
    assert (await facts(db, source))["000.99.99.H99-261201-0001"]["unit_code"] == "70"
    body["madonvi"] = "000.98.98.H98"
    body["data"] = [dossier("000.99.99.H99-261201-0002", MaDonVi="")]
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, body)
    assert r.accepted == 0
    assert r.rejected[0].errors == [
        "MaDonVi: absent, and none of '000.99.99.H99', '000.98.98.H98' (the organ code "
        "prefixing MaHoSo, the envelope's madonvi) is a loaded unit code or mapped organ id; "
        "load it with `ioc organs load`, then replay"
    ]
    async with db.session() as s:
        (letter,) = await list_dead_letters(s, source=source)
    assert letter.unit_ref == "000.98.98.H98"  # the envelope kept for the replay
    conn = await db.connect_raw()
    try:
        await conn.execute(
            "INSERT INTO organs (organ_id, unit_code, name) VALUES ('000.98.98.H98', '688', "
            "'test') ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()
    async with db.session() as s:
        (outcome,) = await replay_dead_letters(s, [letter.id])
    assert outcome.accepted, outcome.errors
    assert (await facts(db, source))["000.99.99.H99-261201-0002"]["unit_code"] == "688"


async def test_real_shapes_stored_with_their_766_facts(db: Database) -> None:
    source = new_source()
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, sample("dvcqg-thanhhoa-td.json"))
    assert (r.accepted, r.rejected) == (2, [])
    rows = await facts(db, source)
    paid, waiting = rows["000.22.17.H10-261130-0103"], rows["000.21.17.H10-261201-0044"]
    assert (paid["unit_code"], waiting["unit_code"]) == ("25195", "689")
    assert (paid["channel"], waiting["channel"]) == (2, 1)
    assert (paid["paid_online"], paid["paid_online_code"]) == (True, 1)
    assert (waiting["paid_online"], waiting["paid_online_code"]) == (False, 3)
    assert (paid["fee_total"], waiting["fee_total"]) == (Decimal("8000.00"), Decimal(75000))
    assert (paid["result_files"], paid["e_result"], paid["data_reused"]) == (1, True, True)
    assert (paid["national_db_used"], paid["vneid_verified"]) == (True, False)
    assert paid["accepted"] and paid["closed_at"] is None and paid["refused_at"] is None
    assert json.loads(waiting["supplements"]) == [
        {"requested_at": "2026-12-02T09:00:00+07:00", "completed_at": "2026-12-03T09:00:00+07:00",
         "due_before": "2026-12-22T17:00:00+07:00", "due_after": "2026-12-23T17:00:00+07:00"},
        {"requested_at": "2026-12-04T10:30:00+07:00", "completed_at": None,
         "due_before": "2026-12-23T17:00:00+07:00", "due_after": None},
    ]  # fmt: skip
    assert (waiting["supplement_count"], waiting["supplement_seconds"]) == (2, 24 * 3600)
    assert waiting["supplement_requested_at"] == t("2026-12-04T10:30:00")
    assert waiting["due_moved_at"] == t("2026-12-23T17:00:00")
    assert paid["due_moved_at"] == t("2026-12-04T17:00:00")


async def test_closing_acceptance_and_supplements_from_progress_steps(db: Database) -> None:
    source = new_source()
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, sample("dvcqg-opencps-dongbohoso.json"))
        steps = await ingest_json(s, "dossiers", source, sample("dvcqg-opencps-capnhattiendo.json"))
    # two steps stored, the blank one dead-lettered with its reasons
    assert (steps.accepted, len(steps.rejected)) == (2, 1)
    row = (await facts(db, source))["H10-2612-000117"]
    assert json.loads(row["supplements"]) == [
        {"requested_at": "2026-12-02T10:00:00+07:00", "completed_at": "2026-12-03T08:00:00+07:00",
         "due_before": None, "due_after": None, "origin": "progress"},
    ]  # fmt: skip
    assert (row["supplement_count"], row["supplement_seconds"]) == (1, 22 * 3600)
    assert row["supplement_requested_at"] == t("2026-12-02T10:00:00")
    # a re-sent sync with the source's empty list keeps what the steps recorded
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, sample("dvcqg-opencps-dongbohoso.json"))
    assert (await facts(db, source))["H10-2612-000117"]["supplement_count"] == 1
    # registered online (1) → withdrawn (7): never accepted; closed at the step's time
    online = dossier("ONLINE-1", TrangThaiHoSo="1", KenhThucHien="2")
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [online])
    assert (await facts(db, source))["ONLINE-1"]["accepted"] is False
    withdraw = {"MaHoSo": "ONLINE-1", "TrangThai": "7", "ThoiDiemXuLy": "20260316080000"}
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, {"service": "CapNhatTienDoHoSoMC",
                                                  "data": [withdraw]})  # fmt: skip
    row = (await facts(db, source))["ONLINE-1"]
    assert row["accepted"] is False and row["closed_at"] == t("2026-03-16T08:00:00")
    # accepted (2) then stopped by a sync (8) with NgayTuChoi: closed then, accepted
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [dossier("STOP-1", TrangThaiHoSo="2")])
        await ingest_json(s, "dossiers", source, [dossier(
            "STOP-1", TrangThaiHoSo="8", NgayTuChoi="20260317090000")])  # fmt: skip
    row = (await facts(db, source))["STOP-1"]
    assert row["accepted"] and row["closed_at"] == t("2026-03-17T09:00:00")
    assert row["refused_at"] == t("2026-03-17T09:00:00")
    # closed without NgayTuChoi: closed when ioc first saw it so, and that stays
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [dossier("STOP-2", TrangThaiHoSo="3")])
    first = (await facts(db, source))["STOP-2"]["closed_at"]
    assert first is not None and first <= datetime.now(UTC)
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [dossier("STOP-2", TrangThaiHoSo="3",
                                                          GhiChu="again")])  # fmt: skip
    assert (await facts(db, source))["STOP-2"]["closed_at"] == first


async def test_bad_record_dead_lettered_rest_of_batch_stored(db: Database) -> None:
    source = new_source()
    batch = [*sample("dvcqg-thanhhoa-td.json"), dossier("BAD", NgayTiepNhan="", KenhThucHien="x")]
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, batch)
    assert r.accepted == 2
    assert [(x.index, x.record_id, x.errors) for x in r.rejected] == [
        (2, "BAD", ["KenhThucHien: 'x' is not an integer (1 in person, 2 online, 3 postal)",
                    "NgayTiepNhan: required"]),
    ]  # fmt: skip
    assert (
        await value(
            db, "SELECT count(*) FROM dead_letters WHERE source = $1 AND record_id = 'BAD'", source
        )
        == 1
    )


async def test_ratings_and_refusals_of_reports(db: Database) -> None:
    source = new_source()
    gopy = sample("hotline-danang-gopy.json")
    neutral = [
        {"id": "R-1", "received_at": "2026-03-15T08:00:00+07:00", "channel": "app",
         "category": "traffic", "unit": "25195", "status": "rejected",
         "updated_at": "2026-03-16T09:00:00+07:00", "rating": "dissatisfied"},
    ]  # fmt: skip
    async with db.session() as s:
        a = await ingest_json(s, "reports", source, gopy)
        b = await ingest_json(s, "reports", source, neutral)
    assert (a.accepted, b.accepted) == (2, 1), (a.rejected, b.rejected)
    rows = {
        r["source_id"]: r
        for r in await fetch(
            db, "SELECT source_id, rating, rejected_at FROM reports WHERE source = $1", source
        )
    }
    assert rows["918273"]["rating"] == "satisfied" and rows["918290"]["rating"] is None
    assert rows["R-1"]["rating"] == "dissatisfied"
    assert rows["R-1"]["rejected_at"] == t("2026-03-16T09:00:00")


async def test_procedure_legal_days_stored(db: Database) -> None:
    source = new_source()
    async with db.session() as s:
        r = await ingest_json(
            s, "procedures", source,
            [{"MaTTHC": "1.004227.000.00.00.H10", "MaDonVi": "689", "TrucTuyen": "True",
              "MucDo": "3", "SoNgayGiaiQuyet": "15"}],
        )  # fmt: skip
    assert r.accepted == 1
    assert await value(db, "SELECT legal_days FROM procedures WHERE source = $1", source) == 15


async def test_status_with_a_dd_mm_yyyy_document_id_finds_its_document(db: Database) -> None:
    source = new_source()
    doc = (SAMPLES / "edxml-document.edxml").read_bytes()
    status = (
        (SAMPLES / "edxml-status.xml")
        .read_text(encoding="utf-8")
        .replace(
            "<edXML:DocumentId>000.00.00.H10,2026/03/12,",
            "<edXML:DocumentId>000.00.00.H10,12/03/2026,",
        )
    )
    async with db.session() as s:
        r = await ingest_xml(s, source, [doc, status.encode()])
    assert (r.accepted, r.rejected) == (2, [])
    assert (
        await value(
            db,
            "SELECT r.status FROM document_recipients r JOIN documents d ON d.id = r.document_pk "
            "WHERE d.source = $1 AND r.organ_id = '000.21.17.H10'",
            source,
        )
        == "04"
    )


async def test_plain_array_placed_by_the_pushed_madonvi(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70")
    source = new_source()
    body = sample("dvcqg-hagiang-tuyensinh.json")
    headers = {"Authorization": f"Bearer {token}"}
    r = await client.post(f"/api/v1/ingest/dossiers?source={source}", json=body, headers=headers)
    assert r.json()["accepted"] == 0  # no unit anywhere: dead-lettered with the reason
    r = await client.post(
        f"/api/v1/ingest/dossiers?source={source}&madonvi=000.00.00.H10", json=body,
        headers=headers,
    )  # fmt: skip
    assert r.status_code == 200 and r.json() == {"accepted": 1, "rejected": []}, r.text
    row = (await facts(db, source))["TS10-2026-000123"]
    assert (row["unit_code"], row["channel"], row["e_result"]) == ("70", 1, True)
    finished = await value(db, "SELECT finished_at FROM dossiers WHERE source = $1", source)
    assert finished is not None  # status 10 without an end time: when ioc first saw it


def test_real_records_take_the_fast_path() -> None:
    for name, envelope in (
        ("dvcqg-opencps-dongbohoso.json", "000.00.00.H10"),
        ("dvcqg-thanhhoa-td.json", None),
        ("dvcqg-hagiang-tuyensinh.json", "000.00.00.H10"),
    ):
        body = sample(name)
        for i, obj in enumerate(body["data"] if isinstance(body, dict) else body):
            assert _plain_dossier(i, obj, envelope) == _checked_dossier(i, obj, envelope)
            assert isinstance(_plain_dossier(i, obj, envelope), DossierRecord)


async def test_0016_round_trips(databases: DatabaseFactory) -> None:
    url = await databases.create(migrate=False)
    await upgrade(url)
    await downgrade(url, "0014_kpis_current_text")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert not await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'dossiers' "
            "AND column_name IN ('supplements', 'closed_at', 'accepted')"
        )
    finally:
        await conn.close()
    await upgrade(url)
    assert await current_heads(url) == script_heads()


# --- Hue-S field reports -----------------------------------------------------------------

PLACES = unit_places(
    [("25204", "Phường Tân Xuân"), ("25213", "Xã Tiến Hưng"), ("25195", "Phường Tân Phú")]
)


def test_hue_s_field_reports_map_to_the_neutral_format() -> None:
    page = sample("hotline-hue-s-phananhhientruong.json")
    done, new = (parse_report(i, o, PLACES) for i, o in enumerate(page["data"]))
    assert isinstance(done, ReportRecord) and isinstance(new, ReportRecord)
    assert (done.source_id, done.format, done.channel) == ("371254", "report_hue_s", "app")
    assert (done.category, done.status, done.unit_ref) == ("environment", "resolved", "25204")
    assert done.received_at == t("2026-03-14T07:42:10")
    assert done.first_response_at == done.resolved_at == t("2026-03-16T15:20:00")
    assert done.due_at == t("2026-03-19T17:00:00") and done.rating == "satisfied"
    assert (done.lat, done.lon, done.citizen_phone) == (11.5151, 106.9063, "0905123987")
    assert done.assigned_to == "UBND phường Tân Xuân" and done.citizen_name is None
    assert (new.category, new.status, new.unit_ref, new.rating) == (
        "traffic", "received", "25213", None,
    )  # fmt: skip
    assert (new.first_response_at, new.resolved_at, new.lat) == (None, None, None)


def test_hue_s_unit_from_the_organ_and_bad_values() -> None:
    record = {
        "PhanAnhID": 9, "TieuDe": "Cây đổ", "NgayPhanAnh": "2026-03-20 10:00:00",
        "DiaChiSuKien": "Đường Lê Lợi", "TrangThai": "Đang xử lý", "DanhGia": "Không hài lòng",
        "TenChuyenMuc": "Cây xanh",
    }  # fmt: skip
    placed = parse_report(0, record, PLACES, "000.00.00.H10")
    assert isinstance(placed, ReportRecord)
    assert (placed.unit_ref, placed.status, placed.category, placed.rating) == (
        "000.00.00.H10", "in_progress", "other", "dissatisfied",
    )  # fmt: skip
    assert placed.received_at == t("2026-03-20T10:00:00")
    bad = parse_report(1, {**record, "NgayPhanAnh": "31/02/2026 10:00", "TrangThai": "Treo"})
    assert isinstance(bad, Rejection) and bad.format == "report_hue_s"
    assert bad.errors == [
        "NgayPhanAnh: '31/02/2026' is not a valid calendar date",
        "TrangThai: unknown state 'Treo' (expected one of đã tiếp nhận, chờ xử lý, "
        "đã chuyển xử lý, đang xử lý, đã xử lý, đã trả lời, từ chối, không xử lý)",
        "DiaChiSuKien: 'Đường Lê Lợi' names no known commune or district, and no organ "
        "(MaDinhDanh, ?madonvi=) says whose report it is",
    ]


async def test_hue_s_page_pushed_as_the_api_answers(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70")
    source = new_source()
    page = sample("hotline-hue-s-phananhhientruong.json")
    page["data"].append({**page["data"][1], "PhanAnhID": 371400, "DiaChiSuKien": "",
                         "DonViThuLy": "", "TrangThai": "Từ chối"})  # fmt: skip
    r = await client.post(
        f"/api/v1/ingest/reports?source={source}&madonvi=000.21.17.H10", json=page,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert r.status_code == 200 and r.json() == {"accepted": 3, "rejected": []}, r.text
    rows = {
        x["source_id"]: x
        for x in await fetch(
            db,
            "SELECT source_id, unit_code, status, rating, rejected_at, citizen_phone, raw "
            "FROM reports WHERE source = $1",
            source,
        )
    }
    assert (rows["371254"]["unit_code"], rows["371254"]["rating"]) == ("25204", "satisfied")
    assert rows["371400"]["unit_code"] == "689"  # the organ the page was requested for
    assert rows["371400"]["status"] == "rejected" and rows["371400"]["rejected_at"] is not None
    # the raw record is kept verbatim; the operator-facing masking covers its account
    assert json.loads(rows["371254"]["raw"])["TaiKhoan"] == "0905123987"
    assert mask_record({"TaiKhoan": "0905123987"}) == {"TaiKhoan": "***"}
