"""Parsers for citizen reports: the neutral format (docs/api.md §1.3) and adapters for two
provinces' exports, Đà Nẵng's *Góp ý* (docs/api.md §1.3) and Huế's Hue-S field reports
(*phản ánh hiện trường*).

Version order: a report's version is (`source_updated_at`, status rank) where
`source_updated_at` is the record's own `updated_at` when the source sends one, else the
latest of received / first response / resolved; rank received < assigned < in_progress <
resolved = rejected.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from ioc.collectors.fields import Reader, raw_json
from ioc.collectors.records import Rejection, ReportRecord
from ioc.collectors.timefmt import BadValue, iso, slash_time

REPORT = "report"
DANANG = "report_danang"

CHANNELS = ("phone", "app", "web", "zalo", "email", "sms")
CATEGORIES = (
    "environment",
    "traffic",
    "land",
    "urban_order",
    "power",
    "water",
    "health",
    "education",
    "admin_procedure",
    "other",
)
STATUSES = ("received", "assigned", "in_progress", "resolved", "rejected")
STATUS_RANK = {"received": 0, "assigned": 1, "in_progress": 2, "resolved": 3, "rejected": 3}
STATUS_RANK_SQL = (
    "CASE {col} WHEN 'received' THEN 0 WHEN 'assigned' THEN 1 WHEN 'in_progress' THEN 2 ELSE 3 END"
)


def parse_report(
    index: int, obj: object, places: Mapping[str, str] | None = None, organ: str | None = None
) -> ReportRecord | Rejection:
    """One docs/api.md §1.3 report (or a Góp ý or Hue-S record, placed by `places`, see
    `unit_places`; `organ` is the organ a Hue-S export was requested for) → a record, or a
    rejection listing every reason."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), REPORT)
    if is_danang(obj):
        return parse_danang(index, obj, places or {})
    if is_hue_s(obj):
        return parse_hue_s(index, obj, places or {}, organ)
    r = Reader(obj)
    source_id = r.ident("id")
    unit_ref = r.ident("unit")
    received = r.time("received_at", iso, required=True)
    channel = _choice(r, "channel", CHANNELS)
    category = _choice(r, "category", CATEGORIES)
    status = _choice(r, "status", STATUSES)
    due = r.time("due_at", iso, required=False)
    first = r.time("first_response_at", iso, required=False)
    resolved = r.time("resolved_at", iso, required=False)
    updated = r.time("updated_at", iso, required=False)
    rejected_at = r.time("rejected_at", iso, required=False)
    rating = _rating(r, "rating")
    lat, lon = r.number("lat"), r.number("lon")
    if status == "resolved" and resolved is None and "resolved_at" not in obj:
        r.errors.append("status resolved needs resolved_at")
    if (
        r.errors
        or source_id is None
        or unit_ref is None
        or received is None
        or channel is None
        or category is None
        or status is None
    ):
        return Rejection(index, source_id, r.errors, r.raw, REPORT, unit_ref)
    if updated is None:
        updated = max(t for t in (received, first, resolved, rejected_at) if t is not None)
    if status == "rejected" and rejected_at is None:
        rejected_at = updated  # refused when the source last changed it
    return ReportRecord(
        index=index,
        source_id=source_id,
        received_at=received,
        channel=channel,
        category=category,
        unit_ref=unit_ref,
        status=status,
        assigned_to=r.text("assigned_to"),
        due_at=due,
        first_response_at=first,
        resolved_at=resolved,
        title=r.text("title"),
        content=r.text("content"),
        citizen_name=r.text("citizen_name"),
        citizen_phone=r.text("citizen_phone"),
        lat=lat,
        lon=lon,
        source_updated_at=updated,
        raw=r.raw,
        rating=rating,
        rejected_at=rejected_at if status == "rejected" else None,
    )


# A citizen's rating of how a report was handled (766 indicator 5.3): our two values, and the
# words provinces' exports use (Đà Nẵng's codes, Hue-S's Vietnamese labels).
RATINGS = {
    "satisfied": "satisfied",
    "dissatisfied": "dissatisfied",
    "hai_long": "satisfied",
    "khong_hai_long": "dissatisfied",
    "hài lòng": "satisfied",
    "rất hài lòng": "satisfied",
    "không hài lòng": "dissatisfied",
    "chưa hài lòng": "dissatisfied",
    "rất không hài lòng": "dissatisfied",
}


def rating_of(value: object) -> str | bool | None:
    """`satisfied`/`dissatisfied` for a known rating, None when there is none, False for a
    value that is no rating ioc knows."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return False
    return RATINGS.get(_fold(value).replace("-", "_"), False)


def _rating(r: Reader, name: str) -> str | None:
    value = r.obj.get(name)
    rating = rating_of(value)
    if not isinstance(rating, str):
        if rating is False:
            r.errors.append(f"{name}: unknown rating {value!r} (satisfied or dissatisfied)")
        return None
    return rating


def _choice(r: Reader, name: str, allowed: tuple[str, ...]) -> str | None:
    value = r.obj.get(name)
    if value is None or value == "":
        r.errors.append(f"{name}: required, one of {', '.join(allowed)}")
        return None
    if value not in allowed:
        r.errors.append(f"{name}: unknown value {value!r} (expected one of {', '.join(allowed)})")
        return None
    return str(value)


# --- Đà Nẵng *Góp ý* adapter ------------------------------------------------------------

DANANG_STATUS = {
    "CHUA_XU_LY": "received",
    "CHUYEN_TIEP": "assigned",
    "DANG_XU_LY": "in_progress",
    "DA_XU_LY": "resolved",
}
DANANG_CHANNEL = {
    "TONG_DAI": "phone",
    "DIEN_THOAI": "phone",
    "APP": "app",
    "WEB": "web",
    "ZALO": "zalo",
    "EMAIL": "email",
    "SMS": "sms",
}
# Category by the export's own category name (its numeric ids differ between provinces).
DANANG_CATEGORY = {
    "môi trường": "environment",
    "giao thông": "traffic",
    "đất đai": "land",
    "trật tự đô thị": "urban_order",
    "điện chiếu sáng": "power",
    "điện": "power",
    "cấp nước": "water",
    "nước": "water",
    "y tế": "health",
    "giáo dục": "education",
    "thủ tục hành chính": "admin_procedure",
}


def is_danang(obj: Mapping[str, Any]) -> bool:
    """A Góp ý export record (it has the handling state and no neutral `status`)."""
    return "maTinhTrangXuLy" in obj and "status" not in obj


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold().strip()


_PREFIXES = ("thị trấn ", "phường ", "xã ", "thành phố ", "thị xã ", "huyện ")


def unit_places(units: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(code, name) pairs → a lookup of folded names, full ("phường tân xuân") and bare
    ("tân xuân"), for `place_unit`."""
    places: dict[str, str] = {}
    for code, name in units:
        full = _fold(name)
        places.setdefault(full, code)
        for prefix in _PREFIXES:
            if full.startswith(prefix):
                places.setdefault(full[len(prefix) :], code)
    return places


def place_unit(place: str, places: Mapping[str, str]) -> str | None:
    """The unit a free-text place names. A full name with its prefix ("phường Tân Xuân")
    beats a bare one (a street can be named after another commune, "Phú Riềng Đỏ"); among
    equals the longest name wins."""
    folded = _fold(place)
    best: tuple[bool, int, str] | None = None
    for name, code in places.items():
        if name and name in folded:
            rank = (name.startswith(_PREFIXES), len(name), code)
            if best is None or rank[:2] > best[:2]:
                best = rank
    return best[2] if best else None


def parse_danang(
    index: int, obj: Mapping[str, Any], places: Mapping[str, str]
) -> ReportRecord | Rejection:
    """A Góp ý record → a neutral report. Its unit is found by commune name in `noiDienRa`
    (the export carries no unit code), unless the record has an explicit `unit`."""
    r = Reader(obj)
    source_id = r.ident("id")
    errors = r.errors
    # Received = when the hotline logged it (ngayTao); else when it happened.
    received = r.time("ngayTao", slash_time_any, required=False)
    if received is None and "ngayTao" not in obj:
        day, clock = obj.get("ngayDienRa"), obj.get("thoiGianDienRa") or "00:00"
        if not day:
            errors.append("ngayTao: required (or ngayDienRa)")
        else:
            try:
                received = slash_time("ngayDienRa", f"{day} {clock}")
            except BadValue as exc:
                errors.append(str(exc))
    due = r.time("hanPhanHoi", slash_time_any, required=False)
    state = obj.get("maTinhTrangXuLy")
    status = DANANG_STATUS.get(str(state))
    if status is None:
        errors.append(
            f"maTinhTrangXuLy: unknown state {state!r} (expected one of {', '.join(DANANG_STATUS)})"
        )
    source_channel = str(obj.get("nguonGopY") or "")
    channel = DANANG_CHANNEL.get(source_channel.upper(), "other")
    if channel == "other":
        errors.append(f"nguonGopY: unknown channel {source_channel!r}")
    rating = _rating(r, "danhGia")
    category_name = _fold(str(obj.get("tenLinhVuc") or ""))
    category = DANANG_CATEGORY.get(category_name, "other")
    steps = obj.get("thongTinXuLy") or []
    step_times = []
    if not isinstance(steps, list):
        errors.append("thongTinXuLy: not a list")
        steps = []
    for i, step in enumerate(steps):
        when = step.get("thoiGian") if isinstance(step, Mapping) else None
        try:
            step_times.append(slash_time(f"thongTinXuLy[{i}].thoiGian", str(when)))
        except BadValue as exc:
            errors.append(str(exc))
    unit_ref = obj.get("unit") if isinstance(obj.get("unit"), str) else None
    if unit_ref is None:
        place = str(obj.get("noiDienRa") or "")
        unit_ref = place_unit(place, places)
        if unit_ref is None:
            errors.append(f"noiDienRa: {place!r} names no known commune or district")
    if errors or source_id is None or received is None or status is None or unit_ref is None:
        return Rejection(index, source_id, errors, r.raw, DANANG)
    first = min(step_times) if step_times else None
    resolved = max(step_times) if status == "resolved" and step_times else None
    if status == "resolved" and resolved is None:
        resolved = received
    last_unit = steps[-1].get("donViXuLy") if steps and isinstance(steps[-1], Mapping) else None
    updated = max(t for t in (received, *step_times) if t is not None)
    return ReportRecord(
        index=index,
        source_id=source_id,
        received_at=received,
        channel=channel,
        category=category,
        unit_ref=unit_ref,
        status=status,
        assigned_to=str(last_unit) if last_unit else None,
        due_at=due,
        first_response_at=first,
        resolved_at=resolved,
        title=r.text("tieuDe"),
        content=r.text("noiDungYKien"),
        citizen_name=r.text("tenDayDu"),
        citizen_phone=r.text("soDienThoai"),
        lat=r.number("lat"),
        lon=r.number("long"),
        source_updated_at=updated,
        raw=r.raw,
        format=DANANG,
        rating=rating,
    )


def slash_time_any(field: str, value: object) -> Any:
    """`dd/MM/yyyy HH:mm` (the Góp ý export's format) as a `Reader.time` parser."""
    return slash_time(field, str(value))


# --- Huế's Hue-S *phản ánh hiện trường* adapter ----------------------------------------

HUE_S = "report_hue_s"

# `TrangThai` as the Hue-S API writes it (its public page shows these three labels);
# `LoaiXuLy` (true = handled) decides when the label is absent.
HUE_S_STATUS = {
    "đã tiếp nhận": "received",
    "chờ xử lý": "received",
    "đã chuyển xử lý": "assigned",
    "đang xử lý": "in_progress",
    "đã xử lý": "resolved",
    "đã trả lời": "resolved",
    "từ chối": "rejected",
    "không xử lý": "rejected",
}
# Category by words of the export's category name (`TenChuyenMuc`; its ids are Hue-S's own).
HUE_S_CATEGORY = (
    ("thủ tục", "admin_procedure"),
    ("môi trường", "environment"),
    ("vệ sinh", "environment"),
    ("rác", "environment"),
    ("giao thông", "traffic"),
    ("đất đai", "land"),
    ("trật tự", "urban_order"),
    ("đô thị", "urban_order"),
    ("xây dựng", "urban_order"),
    ("chiếu sáng", "power"),
    ("điện", "power"),
    ("nước", "water"),
    ("y tế", "health"),
    ("giáo dục", "education"),
)


def is_hue_s(obj: Mapping[str, Any]) -> bool:
    """A Hue-S field report (it has the Hue-S id and no neutral `status`)."""
    return "PhanAnhID" in obj and "status" not in obj


def hue_s_time(field: str, value: object) -> Any:
    """A Hue-S time: `dd/MM/yyyy HH:mm[:ss]`, or ISO / `yyyy-MM-dd HH:mm:ss` (the API's
    format is not documented; the province's own sync job mends `--` before parsing, so do we)."""
    text = str(value).strip().replace("--", "-")
    if "/" in text:
        return slash_time(field, text)
    return iso(field, text.replace(" ", "T", 1))


def parse_hue_s(
    index: int, obj: Mapping[str, Any], places: Mapping[str, str], organ: str | None = None
) -> ReportRecord | Rejection:
    """A Hue-S field report → a neutral report. The unit: the record's `unit` if the sender
    adds one, else the commune named in `DiaChiSuKien`, else in `DonViThuLy`, else the organ
    the export was requested for (`MaDinhDanh` in the record, or `?madonvi=`)."""
    r = Reader(obj)
    source_id = r.ident("PhanAnhID")
    errors = r.errors
    received = r.time("NgayPhanAnh", hue_s_time, required=True)
    replied = r.time("NgayTraLoi", hue_s_time, required=False)
    due = r.time("DenNgay", hue_s_time, required=False)
    label = _fold(str(obj.get("TrangThai") or ""))
    status = HUE_S_STATUS.get(label)
    if status is None and not label:
        status = "resolved" if r.boolean("LoaiXuLy") else "received"
    if status is None:
        errors.append(
            f"TrangThai: unknown state {obj.get('TrangThai')!r} "
            f"(expected one of {', '.join(HUE_S_STATUS)})"
        )
    name = _fold(str(obj.get("TenChuyenMuc") or obj.get("TenChuyenMu") or ""))
    category = next((c for word, c in HUE_S_CATEGORY if word in name), "other")
    rating = rating_of(obj.get("DanhGia"))  # an unknown label is kept in raw, not refused
    unit_ref = obj.get("unit") if isinstance(obj.get("unit"), str) else None
    for key in ("DiaChiSuKien", "DonViThuLy"):
        if unit_ref is None:
            unit_ref = place_unit(str(obj.get(key) or ""), places)
    if unit_ref is None:
        given = obj.get("MaDinhDanh")
        unit_ref = given.strip() if isinstance(given, str) and given.strip() else organ
    if unit_ref is None:
        errors.append(
            f"DiaChiSuKien: {obj.get('DiaChiSuKien')!r} names no known commune or district, "
            "and no organ (MaDinhDanh, ?madonvi=) says whose report it is"
        )
    lat, lon = _coordinate(r, "ViDo"), _coordinate(r, "KinhDo")
    if errors or source_id is None or received is None or status is None or unit_ref is None:
        return Rejection(index, source_id, errors, r.raw, HUE_S, unit_ref or organ)
    resolved = (replied or received) if status == "resolved" else None
    updated = max(t for t in (received, replied) if t is not None)
    account = r.text("TaiKhoan")
    return ReportRecord(
        index=index,
        source_id=source_id,
        received_at=received,
        channel="app",  # Hue-S is the citizens' app
        category=category,
        unit_ref=unit_ref,
        status=status,
        assigned_to=r.text("DonViThuLy"),
        due_at=due,
        first_response_at=replied,
        resolved_at=resolved,
        title=r.text("TieuDe"),
        content=r.text("NoiDungPhanAnh"),
        citizen_name=None,
        citizen_phone=account if account and account.strip().isdigit() else None,
        lat=lat,
        lon=lon,
        source_updated_at=updated,
        raw=r.raw,
        format=HUE_S,
        rating=rating if isinstance(rating, str) else None,
        rejected_at=(replied or updated) if status == "rejected" else None,
    )


def _coordinate(r: Reader, name: str) -> float | None:
    """Hue-S writes coordinates as strings, "" or 0 when there are none."""
    value = r.number(name)
    return value if value else None
