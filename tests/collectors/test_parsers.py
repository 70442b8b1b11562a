"""Parsers on the shared samples and on bad input: every reason is precise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.collectors.dossiers import (
    _checked_dossier,
    _plain_dossier,
    parse_dossier,
    parse_step,
    unwrap,
)
from ioc.collectors.edxml import BadXml, kind_of, parse_document, parse_status, parse_xml
from ioc.collectors.procedures import parse_procedure
from ioc.collectors.records import DossierRecord, Rejection, ReportRecord
from ioc.collectors.reports import parse_report, unit_places

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PLACES = unit_places(
    [("25204", "Phường Tân Xuân"), ("25213", "Xã Tiến Hưng"), ("25264", "Xã Phú Riềng")]
)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_sync_envelope_sample() -> None:
    fmt, items = unwrap(json.loads(sample("dvcqg-dongbohoso.json")))
    assert fmt == "dossier"
    first, second = (parse_dossier(i, o) for i, o in enumerate(items))
    assert isinstance(first, DossierRecord) and isinstance(second, DossierRecord)
    assert first.source_id == "000.21.17.H10-260315-0042"
    assert first.procedure_name == "Đăng ký thành lập hộ kinh doanh"
    assert first.received_at == datetime(2026, 3, 15, 1, 30, tzinfo=UTC)
    assert first.finished_at == datetime(2026, 3, 17, 8, 30, tzinfo=UTC)
    assert (first.channel, first.status, first.digitized, first.paid_online) == (2, 10, True, True)
    # the version is the latest time the record carries (NgayTra)
    assert first.source_updated_at == datetime(2026, 3, 18, 2, 0, tzinfo=UTC)
    # unknown fields are kept verbatim in raw
    assert json.loads(first.raw)["DinhDanhCHS"] == [
        {"LoaiDinhDanh": "1", "SoDinhDanh": "070190001234"}
    ]
    assert (first.paid_online_code, first.vneid_verified, first.national_db_used) == (1, True, True)
    assert (first.fee_total, first.result_files, first.e_result) == (100000, 1, True)
    assert second.finished_at is None and second.status == 4 and second.applicant_email is None


def test_progress_sample() -> None:
    fmt, items = unwrap(json.loads(sample("dvcqg-capnhattiendo.json")))
    assert fmt == "dossier_progress"
    steps = [parse_step(i, o) for i, o in enumerate(items)]
    assert [(s.status, s.at.isoformat()) for s in steps if not isinstance(s, Rejection)] == [
        (4, "2026-03-16T09:30:00+07:00"),
        (9, "2026-03-16T15:40:00+07:00"),
    ]


def test_bad_dossier_lists_every_reason() -> None:
    bad = parse_dossier(
        3,
        {
            "MaHoSo": "X-1",
            "MaTTHC": "1.001612",
            "MaDonVi": "689",
            "KenhThucHien": 4,
            "NgayTiepNhan": "2026-03-15",
            "NgayHenTra": "20261345000000",
            "TrangThaiHoSo": 11,
        },
    )
    assert isinstance(bad, Rejection)
    assert bad.index == 3 and bad.record_id == "X-1"
    assert bad.errors == [
        "KenhThucHien: unknown code 4 (1 in person, 2 online, 3 postal)",
        "TrangThaiHoSo: unknown code 11 (status 1..10)",
        "NgayTiepNhan: '2026-03-15' is not a yyyyMMddHHmmss time",
        "NgayHenTra: '20261345000000' is not a valid calendar time",
    ]
    missing = parse_dossier(0, {"MaTTHC": "x"})
    assert isinstance(missing, Rejection)
    assert missing.errors[0] == "MaHoSo: required, a non-empty string (got None)"
    assert isinstance(parse_dossier(1, [1, 2]), Rejection)


def test_unknown_envelope_is_not_the_format() -> None:
    with pytest.raises(ValueError, match="not DongBoHoSoMC"):
        unwrap({"service": "XoaHoSo", "data": []})
    with pytest.raises(ValueError):
        unwrap("hello")


def test_procedure() -> None:
    ok = parse_procedure(
        0,
        {"MaTTHC": "1.001612.000.00.00.H10", "TenTTHC": "Đăng ký hộ kinh doanh", "MucDo": 4,
         "TrucTuyen": True, "MaDonVi": "689"},
    )  # fmt: skip
    assert not isinstance(ok, Rejection) and ok.online and ok.service_level == 4
    bad = parse_procedure(1, {"MaTTHC": "x", "MaDonVi": "689"})
    assert isinstance(bad, Rejection)
    assert bad.errors == ["TrucTuyen: required (true when offered as an online service)"]


def test_report_neutral_format() -> None:
    ok = parse_report(
        0,
        {"id": "R1", "received_at": "2026-03-15T08:00:00+07:00", "channel": "zalo",
         "category": "environment", "unit": "25204", "status": "resolved",
         "resolved_at": "2026-03-16T10:00:00", "title": "Rác thải ven suối", "x_extra": 1},
    )  # fmt: skip
    assert isinstance(ok, ReportRecord)
    assert ok.resolved_at == datetime(2026, 3, 16, 3, 0, tzinfo=UTC)  # no offset → UTC+7
    assert ok.title == "Rác thải ven suối"
    bad = parse_report(
        2,
        {"id": "R2", "received_at": "yesterday", "channel": "pigeon", "category": "noise",
         "unit": "25204", "status": "resolved"},
    )  # fmt: skip
    assert isinstance(bad, Rejection)
    assert bad.errors == [
        "received_at: 'yesterday' is not an ISO 8601 time",
        "channel: unknown value 'pigeon' (expected one of phone, app, web, zalo, email, sms)",
        "category: unknown value 'noise' (expected one of environment, traffic, land, "
        "urban_order, power, water, health, education, admin_procedure, other)",
        "status resolved needs resolved_at",
    ]


def test_danang_gopy_adapter() -> None:
    items = json.loads(sample("hotline-danang-gopy.json"))
    first, second = (parse_report(i, o, PLACES) for i, o in enumerate(items))
    assert isinstance(first, ReportRecord) and isinstance(second, ReportRecord)
    assert (first.source_id, first.unit_ref, first.status, first.channel, first.category) == (
        "918273", "25204", "resolved", "app", "power",
    )  # fmt: skip
    assert first.received_at.isoformat() == "2026-03-14T20:05:00+07:00"
    assert first.first_response_at is not None
    assert first.first_response_at.isoformat() == "2026-03-15T08:10:00+07:00"
    assert first.resolved_at is not None
    assert first.resolved_at.isoformat() == "2026-03-16T16:45:00+07:00"
    assert first.assigned_to == "Điện lực Đồng Xoài"
    assert (second.unit_ref, second.status, second.channel, second.category) == (
        "25213", "assigned", "phone", "environment",
    )  # fmt: skip
    nowhere = parse_report(0, {**items[1], "noiDienRa": "Hà Nội"}, PLACES)
    assert isinstance(nowhere, Rejection)
    assert nowhere.errors == ["noiDienRa: 'Hà Nội' names no known commune or district"]


def test_edxml_document_and_status_samples() -> None:
    root = parse_xml(sample("edxml-document.edxml"), max_bytes=1 << 20, max_depth=64)
    assert kind_of(root) == "document"
    doc = parse_document(root, sample("edxml-document.edxml").decode())
    assert not isinstance(doc, Exception) and hasattr(doc, "recipients")
    assert doc.document_id == "000.00.00.H10,2026/03/12,1267/UBND-KGVX"  # type: ignore[union-attr]
    assert doc.recipients == ["000.21.17.H10", "000.23.17.H10"]  # type: ignore[union-attr]
    assert doc.subject.startswith("V/v đẩy nhanh")  # type: ignore[union-attr]
    assert [(a.name, a.size) for a in doc.attachments] == [("1267-UBND-KGVX.txt", 85)]  # type: ignore[union-attr]
    assert "ContentTransferEncoded></" in doc.raw_xml  # type: ignore[union-attr]
    sroot = parse_xml(sample("edxml-status.xml"), max_bytes=1 << 20, max_depth=64)
    assert kind_of(sroot) == "status"
    status = parse_status(sroot, "")
    assert (status.organ_id, status.status_code) == ("000.21.17.H10", "04")  # type: ignore[union-attr]


def test_edxml_without_document_id_builds_it_and_accepts_dmy_dates() -> None:
    body = sample("edxml-document.edxml").decode()
    body = body.replace(
        "<edXML:DocumentId>000.00.00.H10,2026/03/12,1267/UBND-KGVX</edXML:DocumentId>", ""
    ).replace("2026/03/12</edXML:PromulgationDate>", "12/03/2026</edXML:PromulgationDate>")
    doc = parse_document(parse_xml(body.encode(), max_bytes=1 << 20, max_depth=64), body)
    assert doc.document_id == "000.00.00.H10,2026/03/12,1267/UBND-KGVX"  # type: ignore[union-attr]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><edXML><MessageHeader>&x;</MessageHeader></edXML>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>"""


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (XXE, "DOCTYPE is refused"),
        (LAUGHS, "DOCTYPE is refused"),
        (b"<a>" * 100 + b"</a>" * 100, "deeper than 64"),
        (b"<edXML><unclosed></edXML>", "malformed XML"),
        (b"<html><body/></html>", None),
    ],
)
def test_hostile_xml(body: bytes, reason: str | None) -> None:
    with pytest.raises(BadXml) as err:
        kind_of(parse_xml(body, max_bytes=1 << 20, max_depth=64))
    if reason:
        assert reason in err.value.detail


def test_unknown_xml_encoding_is_bad_xml() -> None:
    # found by the hardening fuzzer: a LookupError escaped the parser (→ 500)
    with pytest.raises(BadXml, match="unknown encoding: u-tf-8"):
        parse_xml(b'<?xml version="1.0" encoding="u-tf-8"?><a/>', max_bytes=1000, max_depth=8)


def test_database_refusals_found_only_where_they_are() -> None:
    record = {"MaHoSo": "A", "MaTTHC": "1", "KenhThucHien": 2, "MaDonVi": "689",
              "NgayTiepNhan": "20260315083000", "TrangThaiHoSo": 2,
              "GhiChu": "\\u0000 là chữ, không phải NUL"}  # fmt: skip
    clean = parse_dossier(0, record)
    assert isinstance(clean, DossierRecord)
    bad = parse_dossier(1, {"MaHoSo": "B", "x": [{"y": "a\u0000"}]})
    assert isinstance(bad, Rejection)
    assert bad.errors[0] == "x[0].y: contains a NUL character (\\u0000), which cannot be stored"


# --- the plain fast path of the dossier parser agrees with the checked one ---------------

_TIMES = st.one_of(
    st.none(), st.just(""), st.just("20260315083000"), st.just("20260317170000"),
    st.just("20260230083000"), st.just("20260315243000"), st.just("2026031508300"),
    st.just(20260316080000), st.just("２０２６0315083000"), st.just(" 20260315083000"),
)  # fmt: skip
_IDS = st.one_of(
    st.just("000.21.17.H10-260315-0042"), st.just(" 689 "), st.just(""), st.just("   "),
    st.just("x" * 201), st.just(" " + "x" * 199 + " "), st.integers(0, 10**20), st.none(),
    st.just(True), st.just(1.5),
)  # fmt: skip
_CODES = st.one_of(
    st.integers(-1, 11), st.just("2"), st.just("10"), st.just(" 2"), st.just("²"), st.just("12"),
    st.just(""), st.none(), st.booleans(),
)  # fmt: skip
_FLAGS = st.one_of(
    st.booleans(), st.none(), st.just(""), st.just(1), st.just("true"), st.just("True"),
    st.just("0"), st.just("1"), st.just("yes"),
)  # fmt: skip
_LISTS = st.one_of(
    st.none(), st.just(""), st.just([]), st.just({"DuocSoHoa": "1"}), st.just(["x"]),
    st.just([{"DuocSoHoa": "1", "DuocTaiSuDung": "2", "DuongDanTaiTepTin": "https://f/1"}]),
    st.just([{"DuongDanTepTinKetQua": "https://f/kq", "Gia": "50.000"}]),
    st.just([{"Gia": "abc", "DuocLayTuKhoDMQG": "x"}]),
    st.just([{"NgayBoSung": "2026-03-16T09:00:00", "NgayTiepNhanBoSung": "20260317080000",
              "NgayHenTraMoi": "20/03/2026 17:00"}]),
    st.just([{"NgayBoSung": "32/13/2026"}]),
)  # fmt: skip
_TEXTS = st.one_of(st.none(), st.just(""), st.just("Nguyễn Thị Hồng"), st.just(" "),
                   st.integers(0, 9), st.just("a\u0000b"), st.just("\ud800"))  # fmt: skip
_EXTRA_VALUES = st.one_of(
    st.just("NaN"), st.just([{"LoaiDinhDanh": 1, "SoDinhDanh": "070190001234"}]),
    st.just(float("nan")), st.just(2.5), st.just({"x": "\u0000"}), st.just(10**30),
    st.just("Infinity là chữ"),
)  # fmt: skip


_ABSENT = object()
_VALID = {
    "MaHoSo": "000.21.17.H10-260315-0042", "MaTTHC": "1.001612", "MaDonVi": "689",
    "KenhThucHien": 2, "TrangThaiHoSo": 9, "MucDo": 4, "NgayTiepNhan": "20260315083000",
    "NgayHenTra": "20260318170000", "NgayKetThucXuLy": "20260317170000", "DaSoHoa": True,
    "TenTTHC": "Đăng ký hộ kinh doanh", "ChuHoSo": "Nguyễn Thị Hồng",
}  # fmt: skip
_FIELDS = {
    "MaHoSo": _IDS, "MaTTHC": _IDS, "MaDonVi": _IDS, "KenhThucHien": _CODES,
    "TrangThaiHoSo": _CODES, "MucDo": _CODES, "NgayTiepNhan": _TIMES, "NgayHenTra": _TIMES,
    "NgayKetThucXuLy": _TIMES, "NgayTra": _TIMES, "NgayTuChoi": _TIMES, "DaSoHoa": _FLAGS,
    "ThanhToanTrucTuyen": _FLAGS, "TenTTHC": _TEXTS, "ChuHoSo": _TEXTS, "Email": _TEXTS,
    "SoBienNhan": _EXTRA_VALUES, "DinhDanhCHS": _EXTRA_VALUES, "GhiChu": _EXTRA_VALUES,
    "HoSoCoThanhPhanSoHoa": _FLAGS, "TaiKhoanDuocXacThucVoiVNeID": _FLAGS,
    "DuocThanhToanTrucTuyen": _CODES, "TaiLieuNop": _LISTS, "DanhSachGiayToKetQua": _LISTS,
    "DanhSachLePhi": _LISTS, "DanhSachHoSoBoSung": _LISTS, "DSKetNoiCSDL": _LISTS,
}  # fmt: skip
# A valid record with 0-3 fields changed to another value (or removed).
_CHANGES = st.lists(
    st.sampled_from(sorted(_FIELDS)).flatmap(
        lambda name: st.tuples(st.just(name), st.one_of(_FIELDS[name], st.just(_ABSENT)))
    ),
    max_size=3,
)


@settings(max_examples=3000, deadline=None)
@given(_CHANGES)
def test_plain_dossier_path_agrees_with_the_checked_path(changes: list[tuple[str, Any]]) -> None:
    obj = dict(_VALID)
    for name, value in changes:
        if value is _ABSENT:
            obj.pop(name, None)
        else:
            obj[name] = value
    plain = _plain_dossier(7, obj)
    checked = _checked_dossier(7, obj)
    if plain is not None:
        assert plain == checked
    assert parse_dossier(7, obj) == checked


def test_plain_dossier_path_takes_the_usual_records() -> None:
    _, items = unwrap(json.loads(sample("dvcqg-dongbohoso.json")))
    for i, obj in enumerate(items):  # nested DinhDanhCHS included
        assert _plain_dossier(i, obj) == _checked_dossier(i, obj) is not None
    assert isinstance(_checked_dossier(0, items[0]), DossierRecord)


_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _JSON, max_size=5))
def test_raw_json_is_the_standard_text_whichever_serialiser_writes_it(obj: dict[str, Any]) -> None:
    """orjson serves records without floats (nested lists included); its text must be what
    `json.dumps` writes, or a re-sent record would look changed and dead-letters would not
    fold; NaN and the unencodable stay visible to `suspicious`."""
    from ioc.collectors.fields import raw_json

    try:
        expected = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        expected.encode("utf-8")
    except UnicodeEncodeError:
        expected = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    assert raw_json(obj) == expected
