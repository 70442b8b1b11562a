"""Parser for the procedure catalogue (docs/api.md §1.2): which procedures a unit offers online."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ioc.collectors.fields import Reader, raw_json
from ioc.collectors.records import ProcedureRecord, Rejection

PROCEDURE = "procedure"


def parse_procedure(index: int, obj: object) -> ProcedureRecord | Rejection:
    """One catalogue entry → a record keyed by (code, unit), or a rejection."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), PROCEDURE)
    r = Reader(obj)
    code = r.ident("MaTTHC")
    unit_ref = r.ident("MaDonVi")
    level = r.integer("MucDo", lambda v: 1 <= v <= 4, "service level 2..4", required=False)
    if "TrucTuyen" not in obj:
        r.errors.append("TrucTuyen: required (true when offered as an online service)")
    online = r.boolean("TrucTuyen")
    legal_days = _legal_days(obj, r)
    if r.errors or code is None or unit_ref is None:
        return Rejection(index, code, r.errors, r.raw, PROCEDURE, unit_ref)
    return ProcedureRecord(
        index=index,
        code=code,
        name=r.text("TenTTHC"),
        sector_code=r.text("MaLinhVuc"),
        service_level=level,
        online=online,
        unit_ref=unit_ref,
        raw=r.raw,
        legal_days=legal_days,
    )


# Units of a legal duration in the national procedure database (`DONVITINH`), in working
# days; one working day = 8 working hours.
_DAY_UNITS = {"ngày": Decimal(1), "ngày làm việc": Decimal(1), "ngày làm việc.": Decimal(1),
              "giờ": Decimal(1) / 8, "giờ làm việc": Decimal(1) / 8}  # fmt: skip


def _days(value: object, where: str, r: Reader) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        r.fail(f"{where}: {value!r} is not a number of days")
        return None
    try:
        days = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        r.fail(f"{where}: {value!r} is not a number of days")
        return None
    if not days.is_finite() or days < 0:
        r.fail(f"{where}: {value!r} is not a number of days")
        return None
    return days


def _legal_days(obj: Mapping[str, Any], r: Reader) -> Decimal | None:
    """The procedure's legal maximum duration in working days, when the record carries one:
    `ThoiGianGiaiQuyet` or `SoNgayGiaiQuyet` (days), else the national procedure database's
    own shape, `CACHTHUCTHUCHIEN[].THOIGIAN[].THOIGIANGIAIQUYET` with its unit `DONVITINH`
    (the longest over the ways of submitting: the legal maximum)."""
    for name in ("ThoiGianGiaiQuyet", "SoNgayGiaiQuyet"):
        if obj.get(name) not in (None, ""):
            return _days(obj.get(name), name, r)
    ways = obj.get("CACHTHUCTHUCHIEN")
    if not isinstance(ways, list):
        return None
    found: list[Decimal] = []
    for i, way in enumerate(ways):
        times = way.get("THOIGIAN") if isinstance(way, Mapping) else None
        for j, t in enumerate(times if isinstance(times, list) else []):
            if not isinstance(t, Mapping):
                continue
            where = f"CACHTHUCTHUCHIEN[{i}].THOIGIAN[{j}].THOIGIANGIAIQUYET"
            days = _days(t.get("THOIGIANGIAIQUYET"), where, r)
            unit = _DAY_UNITS.get(str(t.get("DONVITINH") or "ngày").strip().casefold())
            if days is not None and unit is not None:
                found.append(days * unit)
    return max(found) if found else None
