"""Parsers for the portal's dossiers (docs/api.md §1.1): plain arrays, the DVCQG sync envelope
`DongBoHoSoMC`, and progress steps `CapNhatTienDoHoSoMC`.

Version order (so an older copy never overwrites a newer one): a dossier's version is
(`source_updated_at`, status rank). `source_updated_at` is the latest of the times the record
itself carries (received, finished, returned, refused); the status rank orders the life
cycle 1 < 2 < 4 = 5 = 6 < 3 = 7 = 8 < 9 < 10. See docs/collectors.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ioc.collectors.fields import MAX_ID, Fields, NotPlain, PlainReader, Reader, raw_json
from ioc.collectors.records import DossierRecord, ProgressStep, Rejection, Supplement
from ioc.collectors.timefmt import BadValue, any_local, compact_local

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


def envelope_unit(body: Any) -> str | None:
    """The sending system's organ (`madonvi`) of a sync envelope, if it names one: the unit
    of last resort for its dossiers (docs/api.md §1.1)."""
    if isinstance(body, dict):
        value = body.get("madonvi")
        if isinstance(value, str) and value.strip() and len(value) <= MAX_ID:
            return value.strip()
    return None


def parse_dossier(
    index: int, obj: object, envelope: str | None = None
) -> DossierRecord | Rejection:
    """One dossier object → a record, or a rejection listing every reason. `envelope` is the
    sync envelope's `madonvi` (the unit when neither `MaDonVi` nor `MaHoSo` names one)."""
    if type(obj) is dict and (record := _plain_dossier(index, obj, envelope)) is not None:
        return record
    return _checked_dossier(index, obj, envelope)


# Codes a field may take, as C-level membership tests (cheaper than a lambda per call).
_CHANNEL = CHANNELS.__contains__
_STATUS = STATUS_NAMES.__contains__
_LEVEL = range(1, 5).__contains__
_PAYMENT = range(0, 4).__contains__
# The organ code a one-stop system prefixes its dossier ids with (`000.21.17.H10-261201-0001`,
# `H56.14-240101-00001`): dotted letters and digits before the first dash.
_ORGAN_PREFIX = re.compile(r"([A-Za-z0-9]+(?:\.[A-Za-z0-9]+)+)-")
CLOSED = (3, 7, 8)


def organ_prefix(source_id: str) -> str | None:
    """The receiving agency's organ code that prefixes a dossier id, if it has one."""
    m = _ORGAN_PREFIX.match(source_id)
    return m[1] if m else None


def _plain_dossier(
    index: int, obj: dict[str, Any], envelope: str | None = None
) -> DossierRecord | Rejection | None:
    """The fast path: the record read through `PlainReader`, or None when a field is not
    plain (then `_checked_dossier` reads it again and collects the reasons). Parsing is most
    of the pipeline's Python time; `tests/collectors/test_parsers.py` checks both agree."""
    try:
        return _dossier(index, obj, PlainReader(obj), envelope)
    except NotPlain:
        return None


def _checked_dossier(
    index: int, obj: object, envelope: str | None = None
) -> DossierRecord | Rejection:
    """Every field through `Reader`: tolerant of other types, and every reason collected."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), DOSSIER, envelope)
    return _dossier(index, obj, Reader(obj), envelope)


def _dossier(
    index: int, obj: Mapping[str, Any], r: Fields, envelope: str | None = None
) -> DossierRecord | Rejection:
    """The one place a dossier record is built, whichever reader reads its fields."""
    source_id = r.ident("MaHoSo")
    procedure = r.ident("MaTTHC")
    unit_ref = r.ref("MaDonVi")
    # Absent = in person, as DVCQG counts it (real senders often omit it).
    channel = r.integer("KenhThucHien", _CHANNEL, "1 in person, 2 online, 3 postal", required=False)
    status = r.integer("TrangThaiHoSo", _STATUS, "status 1..10", required=True)
    level = r.integer("MucDo", _LEVEL, "service level 2..4", required=False)
    received = r.time("NgayTiepNhan", compact_local, required=True)
    due = r.time("NgayHenTra", compact_local, required=False)
    finished = r.time("NgayKetThucXuLy", compact_local, required=False)
    returned = r.time("NgayTra", compact_local, required=False)
    refused = r.time("NgayTuChoi", compact_local, required=False)
    digitized = r.boolean("HoSoCoThanhPhanSoHoa") | r.boolean("DaSoHoa")
    if type(obj.get("DuocThanhToanTrucTuyen")) is bool:  # an early sender's boolean
        paid_code = None
        paid = r.boolean("DuocThanhToanTrucTuyen")
    else:
        paid_code = r.integer(
            "DuocThanhToanTrucTuyen", _PAYMENT, "0-3, 1 and 2 paid online", required=False
        )
        paid = paid_code in (1, 2)
    paid = paid | r.boolean("ThanhToanTrucTuyen")
    vneid = r.boolean("TaiKhoanDuocXacThucVoiVNeID")
    facts = _lists(obj, r)
    if status in FINISHED and finished is None:
        # Senders that omit it (a finished status, no end time): the result's return time,
        # else the time ioc first sees it finished (`dossier_facts.infer_finished`).
        finished = returned
    prefix = organ_prefix(source_id) if source_id and unit_ref is None else None
    if prefix is None:
        fallbacks: tuple[str, ...] = () if envelope is None else (envelope,)
    else:
        fallbacks = (prefix,) if envelope is None else (prefix, envelope)
    if unit_ref is None and not fallbacks and source_id is not None:
        r.fail(
            "MaDonVi: absent, and neither an organ code prefixing MaHoSo nor the envelope's "
            "madonvi names the unit"
        )
    placed_by = unit_ref or (fallbacks[0] if fallbacks else None)
    if (
        r.errors
        or source_id is None
        or procedure is None
        or placed_by is None
        or status is None
        or received is None
    ):
        # The dead-letter keeps the envelope's madonvi when the record has no MaDonVi: a
        # replay re-derives the MaHoSo prefix but has no envelope any more.
        unit = unit_ref or envelope or placed_by
        return Rejection(index, source_id, r.errors, r.raw, DOSSIER, unit)
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
        channel=channel or 1,
        unit_ref=placed_by,
        received_at=received,
        due_at=due,
        finished_at=finished,
        returned_at=returned,
        status=status,
        service_level=level,
        digitized=digitized or facts.digitized,
        paid_online=paid,
        applicant_name=r.text("ChuHoSo"),
        applicant_phone=r.text("SoDienThoai"),
        applicant_email=r.text("Email"),
        applicant_address=r.text("DiaChi"),
        source_updated_at=updated,
        raw=r.raw,
        unit_given=unit_ref is not None,
        unit_fallbacks=() if unit_ref is not None else fallbacks[1:],
        paid_online_code=paid_code,
        result_files=facts.result_files,
        e_result=facts.e_result,
        fee_total=facts.fee_total,
        data_reused=facts.reused,
        vneid_verified=vneid,
        national_db_used=facts.national_db,
        refused_at=refused,
        closed_at=refused if status in CLOSED else None,
        supplement_list=facts.supplements if facts.supplements else [],
        due_moved_at=facts.due_moved_at,
    )


@dataclass(slots=True)
class _Facts:
    digitized: bool = False
    reused: bool = False
    result_files: int = 0
    e_result: bool = False
    fee_total: Decimal = Decimal(0)
    national_db: bool = False
    supplements: list[Supplement] = field(default_factory=list)
    due_moved_at: datetime | None = None


def _entries(obj: Mapping[str, Any], name: str, r: Fields) -> list[Mapping[str, Any]]:
    """The objects of one of the dossier's lists; absent, null or "" is empty."""
    value = obj.get(name)
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        r.fail(f"{name}: not a list (got {type(value).__name__})")
        return []
    entries = []
    for i, entry in enumerate(value):
        if isinstance(entry, Mapping):
            entries.append(entry)
        else:
            r.fail(f"{name}[{i}]: not an object")
    return entries


_FLAG_TEXT = {"1": 1, "0": 0, "2": 2, "true": 1, "false": 0}


def _code(value: object) -> int | None:
    """A 0/1(/2) flag as senders write it (bool, int, "1", "True"); "" and null are 0; None
    for anything else."""
    if value is None or value == "":
        return 0
    if type(value) is bool:
        return int(value)
    if type(value) is int:
        return value if value in (0, 1, 2) else None
    if type(value) is str:
        return _FLAG_TEXT.get(value.strip().lower())
    return None


def _flag(entry: Mapping[str, Any], key: str, where: str, r: Fields) -> bool:
    code = _code(entry.get(key))
    if code is None or code == 2:
        r.fail(f"{where}.{key}: {entry.get(key)!r} is not 0/1")
        return False
    return code == 1


def _reuse_code(entry: Mapping[str, Any], key: str, where: str, r: Fields) -> bool:
    """`DuocTaiSuDung`: 0 no, 1 reused, 2 reused and replaced by a result's code."""
    code = _code(entry.get(key))
    if code is None:
        r.fail(f"{where}.{key}: {entry.get(key)!r} is not 0, 1 or 2")
        return False
    return code > 0


_AMOUNT = re.compile(r"\d+(?:\.\d+)?")
_GROUPED = re.compile(r"\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*")


def _amount(value: object, where: str, r: Fields) -> Decimal:
    """A fee as senders write it: 50000, "50000", "50000.0", "50.000" or "50,000" (grouped
    thousands, as Vietnamese amounts are often written); "" or null is 0."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        if isinstance(value, float) and not math.isfinite(value):
            r.fail(f"{where}: {value!r} is not an amount")
            return Decimal(0)
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip()
        if _GROUPED.fullmatch(text):
            return Decimal(text.replace(".", "").replace(",", ""))
        if _AMOUNT.fullmatch(text):
            return Decimal(text)
    r.fail(f"{where}: {value!r} is not an amount")
    return Decimal(0)


def _when(entry: Mapping[str, Any], key: str, where: str, r: Fields) -> datetime | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    try:
        return any_local(f"{where}.{key}", value)
    except BadValue as exc:
        r.fail(str(exc))
        return None


_LIST_FIELDS = (
    "TaiLieuNop", "DanhSachGiayToKetQua", "DanhSachLePhi", "DanhSachHoSoBoSung", "DSKetNoiCSDL",
)  # fmt: skip
_NO_FACTS = _Facts()  # shared by records without lists: read, never changed


def _lists(obj: Mapping[str, Any], r: Fields) -> _Facts:
    """What the 766 indicators need from the dossier's lists (docs/collectors.md)."""
    get = obj.get
    if not any(get(name) for name in _LIST_FIELDS):
        return _NO_FACTS
    facts = _Facts()
    for i, doc in enumerate(_entries(obj, "TaiLieuNop", r)):
        where = f"TaiLieuNop[{i}]"
        deleted = _flag(doc, "IsDeleted", where, r)
        has_file = bool(str(doc.get("DuongDanTaiTepTin") or "").strip())
        if not deleted and (_flag(doc, "DuocSoHoa", where, r) or has_file):
            facts.digitized = True
        if _reuse_code(doc, "DuocTaiSuDung", where, r) | _flag(doc, "DuocLayTuKhoDMQG", where, r):
            facts.reused = True
    for result in _entries(obj, "DanhSachGiayToKetQua", r):
        facts.result_files += 1
        if str(result.get("DuongDanTepTinKetQua") or "").strip():
            facts.e_result = True
    for i, fee in enumerate(_entries(obj, "DanhSachLePhi", r)):
        facts.fee_total += _amount(fee.get("Gia"), f"DanhSachLePhi[{i}].Gia", r)
    requests = []
    for i, req in enumerate(_entries(obj, "DanhSachHoSoBoSung", r)):
        where = f"DanhSachHoSoBoSung[{i}]"
        requests.append(
            Supplement(
                requested_at=_when(req, "NgayBoSung", where, r),
                completed_at=_when(req, "NgayTiepNhanBoSung", where, r),
                due_before=_when(req, "NgayHenTraTruoc", where, r),
                due_after=_when(req, "NgayHenTraMoi", where, r),
            )
        )
    # In request order (the source's order where a request has no time).
    facts.supplements = sorted(
        requests, key=lambda s: (s.requested_at is None, s.requested_at or _EPOCH)
    )
    moved = [s.due_after for s in requests if s.due_after is not None]
    facts.due_moved_at = max(moved) if moved else None
    links = obj.get("DSKetNoiCSDL")
    if isinstance(links, list):
        facts.national_db = len(links) > 0
    elif links not in (None, ""):
        r.fail(f"DSKetNoiCSDL: not a list (got {type(links).__name__})")
    return facts


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
