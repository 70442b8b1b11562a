"""Parsers for the portal's dossiers (CONTRACT §1.1): plain arrays, the DVCQG sync envelope
`DongBoHoSoMC`, and progress steps `CapNhatTienDoHoSoMC`.

Version order (so an older copy never overwrites a newer one): a dossier's version is
(`source_updated_at`, status rank). `source_updated_at` is the latest of the times the record
itself carries (received, finished, returned, refused); the status rank orders the life
cycle 1 < 2 < 4 = 5 = 6 < 3 = 7 = 8 < 9 < 10. See docs/collectors.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ioc.collectors.fields import MAX_ID, Reader, plain_raw, raw_json, suspicious
from ioc.collectors.records import DossierRecord, ProgressStep, Rejection
from ioc.collectors.timefmt import BadValue, compact_local

STATUS_NAMES = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính",
    7: "Công dân yêu cầu rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}
# Rank of each status in the life cycle, indexed by status (1-based in SQL arrays too).
STATUS_RANK = (0, 1, 3, 2, 2, 2, 3, 3, 4, 5)
STATUS_RANK_SQL = "ARRAY[" + ",".join(str(r) for r in STATUS_RANK) + "]::smallint[]"
FINISHED = (9, 10)
CHANNELS = (1, 2, 3)

DOSSIER = "dossier"
PROGRESS = "dossier_progress"


def unwrap(body: Any) -> tuple[str, list[Any]]:
    """(format, items) of a dossier push body: array, sync envelope or progress envelope.

    Raises `ValueError` when the body is none of those shapes (→ 400)."""
    if isinstance(body, list):
        return DOSSIER, body
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        service = body.get("service")
        if service == "DongBoHoSoMC":
            return DOSSIER, body["data"]
        if service == "CapNhatTienDoHoSoMC":
            return PROGRESS, body["data"]
        raise ValueError(f"envelope service {service!r} is not DongBoHoSoMC or CapNhatTienDoHoSoMC")
    raise ValueError(
        "expected a JSON array of dossiers or a DongBoHoSoMC / CapNhatTienDoHoSoMC envelope"
    )


def parse_dossier(index: int, obj: object) -> DossierRecord | Rejection:
    """One dossier object → a record, or a rejection listing every reason."""
    if type(obj) is dict and (record := _plain_dossier(index, obj)) is not None:
        return record
    return _checked_dossier(index, obj)


class _NotPlain(Exception):
    """A value the plain path does not take; the checked path reads the record instead."""


def _plain_time(obj: dict[str, Any], name: str) -> datetime | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise _NotPlain
    try:
        return compact_local(name, value)
    except BadValue:
        raise _NotPlain from None


def _plain_text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise _NotPlain
    return value


def _plain_flag(obj: dict[str, Any], name: str) -> bool:
    value = obj.get(name)
    if value is None or value == "":
        return False
    if type(value) is not bool:
        raise _NotPlain
    return value


def _plain_dossier(index: int, obj: dict[str, Any]) -> DossierRecord | None:
    """The fast path for a dossier whose every field has its plain type (ids and times as
    strings, codes as integers, flags as booleans) and is valid: the record, exactly as
    `_checked_dossier` builds it, or None for anything else (another type, a missing or bad
    value, a value PostgreSQL cannot store), which then goes the checked way and gets its
    reasons. Parsing is most of the pipeline's Python time; this path reads each field once
    and collects nothing. `tests/collectors/test_parsers.py` checks that both paths agree."""
    get = obj.get
    source_id, procedure, unit_ref = get("MaHoSo"), get("MaTTHC"), get("MaDonVi")
    channel, status, level = get("KenhThucHien"), get("TrangThaiHoSo"), get("MucDo")
    if (
        type(source_id) is not str or type(procedure) is not str or type(unit_ref) is not str
        or type(channel) is not int or channel not in CHANNELS
        or type(status) is not int or status not in STATUS_NAMES
        or not (level is None or (type(level) is int and 1 <= level <= 4))
        or len(source_id) > MAX_ID or len(procedure) > MAX_ID or len(unit_ref) > MAX_ID
    ):  # fmt: skip
        return None
    source_id, procedure, unit_ref = source_id.strip(), procedure.strip(), unit_ref.strip()
    if not source_id or not procedure or not unit_ref or get("NgayTiepNhan") in (None, ""):
        return None
    try:
        received = _plain_time(obj, "NgayTiepNhan")
        due, finished = _plain_time(obj, "NgayHenTra"), _plain_time(obj, "NgayKetThucXuLy")
        returned, refused = _plain_time(obj, "NgayTra"), _plain_time(obj, "NgayTuChoi")
        digitized, paid = _plain_flag(obj, "DaSoHoa"), _plain_flag(obj, "ThanhToanTrucTuyen")
        record = DossierRecord(
            index=index,
            source_id=source_id,
            procedure_code=procedure,
            procedure_name=_plain_text(obj, "TenTTHC"),
            sector_code=_plain_text(obj, "MaLinhVuc"),
            sector_name=_plain_text(obj, "TenLinhVuc"),
            channel=channel,
            unit_ref=unit_ref,
            received_at=received,  # type: ignore[arg-type]  # not None: checked above
            due_at=due,
            finished_at=finished,
            returned_at=returned,
            status=status,
            service_level=level,
            digitized=digitized,
            paid_online=paid,
            applicant_name=_plain_text(obj, "ChuHoSo"),
            applicant_phone=_plain_text(obj, "SoDienThoai"),
            applicant_email=_plain_text(obj, "Email"),
            applicant_address=_plain_text(obj, "DiaChi"),
            source_updated_at=received,  # type: ignore[arg-type]
            raw="",
        )
    except _NotPlain:
        return None
    if status in FINISHED and finished is None and "NgayKetThucXuLy" not in obj:
        return None
    raw = plain_raw(obj)
    if raw is None:  # nested or float values (e.g. DinhDanhCHS): the general serialiser
        raw = raw_json(obj)
        if suspicious(raw):
            return None
    record.raw = raw
    for t in (finished, returned, refused):
        if t is not None and t > record.source_updated_at:
            record.source_updated_at = t
    return record


def _checked_dossier(index: int, obj: object) -> DossierRecord | Rejection:
    """Every field through `Reader`: tolerant of other types, and every reason collected."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), DOSSIER)
    r = Reader(obj)
    source_id = r.ident("MaHoSo")
    procedure = r.ident("MaTTHC")
    unit_ref = r.ident("MaDonVi")
    channel = r.integer(
        "KenhThucHien", lambda v: v in CHANNELS, "1 in person, 2 online, 3 postal", required=True
    )
    status = r.integer("TrangThaiHoSo", lambda v: v in STATUS_NAMES, "status 1..10", required=True)
    level = r.integer("MucDo", lambda v: 1 <= v <= 4, "service level 2..4", required=False)
    received = r.time("NgayTiepNhan", compact_local, required=True)
    due = r.time("NgayHenTra", compact_local, required=False)
    finished = r.time("NgayKetThucXuLy", compact_local, required=False)
    returned = r.time("NgayTra", compact_local, required=False)
    refused = r.time("NgayTuChoi", compact_local, required=False)
    digitized, paid = r.boolean("DaSoHoa"), r.boolean("ThanhToanTrucTuyen")
    if status in FINISHED and finished is None and "NgayKetThucXuLy" not in obj:
        r.errors.append(f"TrangThaiHoSo {status} (finished) needs NgayKetThucXuLy")
    if (
        r.errors
        or source_id is None
        or procedure is None
        or unit_ref is None
        or channel is None
        or status is None
        or received is None
    ):
        return Rejection(index, source_id, r.errors, r.raw, DOSSIER, unit_ref)
    updated = max(t for t in (received, finished, returned, refused) if t is not None)
    return DossierRecord(
        index=index,
        source_id=source_id,
        procedure_code=procedure,
        procedure_name=r.text("TenTTHC"),
        sector_code=r.text("MaLinhVuc"),
        sector_name=r.text("TenLinhVuc"),
        channel=channel,
        unit_ref=unit_ref,
        received_at=received,
        due_at=due,
        finished_at=finished,
        returned_at=returned,
        status=status,
        service_level=level,
        digitized=digitized,
        paid_online=paid,
        applicant_name=r.text("ChuHoSo"),
        applicant_phone=r.text("SoDienThoai"),
        applicant_email=r.text("Email"),
        applicant_address=r.text("DiaChi"),
        source_updated_at=updated,
        raw=r.raw,
    )


def parse_step(index: int, obj: object) -> ProgressStep | Rejection:
    """One progress step → a step, or a rejection."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), PROGRESS)
    r = Reader(obj)
    source_id = r.ident("MaHoSo")
    status = r.integer("TrangThai", lambda v: v in STATUS_NAMES, "status 1..10", required=True)
    at = r.time("ThoiDiemXuLy", compact_local, required=True)
    if r.errors or source_id is None or status is None or at is None:
        return Rejection(index, source_id, r.errors, r.raw, PROGRESS)
    return ProgressStep(
        index=index,
        source_id=source_id,
        status=status,
        at=at,
        actor=r.text("NguoiXuLy"),
        department=r.text("PhongBanXuLy"),
        note=r.text("NoiDungXuLy"),
        raw=r.raw,
    )
