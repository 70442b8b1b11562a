"""Parser for the procedure catalogue (CONTRACT §1.2): which procedures a unit offers online."""

from __future__ import annotations

from collections.abc import Mapping

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
    )
