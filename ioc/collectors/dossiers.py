"""Parsers for the portal's dossiers (CONTRACT §1.1): plain arrays, the DVCQG sync envelope
`DongBoHoSoMC`, and progress steps `CapNhatTienDoHoSoMC`.

Version order (so an older copy never overwrites a newer one): a dossier's version is
(`source_updated_at`, status rank). `source_updated_at` is the latest of the times the record
itself carries (received, finished, returned, refused); the status rank orders the life
cycle 1 < 2 < 4 = 5 = 6 < 3 = 7 = 8 < 9 < 10. See docs/collectors.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ioc.collectors.fields import Fields, NotPlain, PlainReader, Reader, raw_json
from ioc.collectors.records import DossierRecord, ProgressStep, Rejection
from ioc.collectors.timefmt import compact_local

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


# Codes a field may take, as C-level membership tests (cheaper than a lambda per call).
_CHANNEL = CHANNELS.__contains__
_STATUS = STATUS_NAMES.__contains__
_LEVEL = range(1, 5).__contains__


def _plain_dossier(index: int, obj: dict[str, Any]) -> DossierRecord | Rejection | None:
    """The fast path: the record read through `PlainReader`, or None when a field is not
    plain (then `_checked_dossier` reads it again and collects the reasons). Parsing is most
    of the pipeline's Python time; `tests/collectors/test_parsers.py` checks both agree."""
    try:
        return _dossier(index, obj, PlainReader(obj))
    except NotPlain:
        return None


def _checked_dossier(index: int, obj: object) -> DossierRecord | Rejection:
    """Every field through `Reader`: tolerant of other types, and every reason collected."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), DOSSIER)
    return _dossier(index, obj, Reader(obj))


def _dossier(index: int, obj: Mapping[str, Any], r: Fields) -> DossierRecord | Rejection:
    """The one place a dossier record is built, whichever reader reads its fields."""
    source_id = r.ident("MaHoSo")
    procedure = r.ident("MaTTHC")
    unit_ref = r.ident("MaDonVi")
    channel = r.integer("KenhThucHien", _CHANNEL, "1 in person, 2 online, 3 postal", required=True)
    status = r.integer("TrangThaiHoSo", _STATUS, "status 1..10", required=True)
    level = r.integer("MucDo", _LEVEL, "service level 2..4", required=False)
    received = r.time("NgayTiepNhan", compact_local, required=True)
    due = r.time("NgayHenTra", compact_local, required=False)
    finished = r.time("NgayKetThucXuLy", compact_local, required=False)
    returned = r.time("NgayTra", compact_local, required=False)
    refused = r.time("NgayTuChoi", compact_local, required=False)
    digitized, paid = r.boolean("DaSoHoa"), r.boolean("ThanhToanTrucTuyen")
    if status in FINISHED and finished is None and "NgayKetThucXuLy" not in obj:
        r.fail(f"TrangThaiHoSo {status} (finished) needs NgayKetThucXuLy")
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
    updated = received
    for t in (finished, returned, refused):
        if t is not None and t > updated:
            updated = t
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
