"""The request bodies of the push endpoints as the OpenAPI description shows them, with real
examples (`examples/`: the shapes source systems send, as in `tests/samples/`).

The ingest routes read their bodies themselves (a bad record is rejected on its own, the
others stored: docs/api.md §2), so FastAPI cannot derive these from a model. The schemas
say what makes a whole body refused (400, 422); what makes one record rejected is in each
record's description and answered in `rejected`, never as an HTTP error. So a record's
fields are described, not typed: a record that breaks them is still a valid request."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

_EXAMPLES = files("ioc.collectors") / "examples"
MAX_RECORDS = 10_000


def _json(name: str) -> Any:
    return json.loads((_EXAMPLES / name).read_text(encoding="utf-8"))


def _text(name: str) -> str:
    return (_EXAMPLES / name).read_text(encoding="utf-8")


def _fields(fields: dict[str, str]) -> dict[str, Any]:
    return {name: {"description": text} for name, text in fields.items()}


def _record(title: str, description: str, fields: dict[str, str]) -> dict[str, Any]:
    return {"title": title, "description": description, "properties": _fields(fields)}


def _array(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": MAX_RECORDS,
        "description": f"At most {MAX_RECORDS:,} records.",
        "items": record,
    }


DOSSIER = _record(
    "Dossier (DVCQG sync)",
    "One dossier with the field names of the DVCQG sync (docs/api.md §1.1); values may be "
    "strings as one-stop systems send them. Any other field is kept verbatim.",
    {
        "MaHoSo": "Required. Dossier id, unique per source.",
        "MaTTHC": "Required. Procedure code.",
        "KenhThucHien": "Channel: 1 in person (default), 2 online, 3 postal.",
        "MaDonVi": "Handling unit: GSO code or organ id (`000.21.17.H10`).",
        "NgayTiepNhan": "Required. Received, `yyyyMMddHHmmss` (UTC+7).",
        "NgayHenTra": "Due, `yyyyMMddHHmmss`.",
        "NgayKetThucXuLy": "Processing finished, `yyyyMMddHHmmss`.",
        "TrangThaiHoSo": "Required. Status 1..10.",
        "ChuHoSo": "Applicant (personal data: masked in every output).",
    },
)
STEP = _record(
    "Progress step (DVCQG CapNhatTienDoHoSoMC)",
    "One processing step of a known dossier (docs/api.md §1.1).",
    {
        "MaHoSo": "Required. The dossier's id.",
        "TrangThai": "Required. The status it moves to, 1..10.",
        "ThoiDiemXuLy": "Required. When, `yyyyMMddHHmmss`.",
        "NguoiXuLy": "Who handled it.",
        "PhongBanXuLy": "Which department.",
        "NoiDungXuLy": "What was done.",
    },
)


def _envelope(service: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"{service} envelope",
        "required": ["service", "data"],
        "properties": {
            "service": {"const": service},
            "madonvi": {"description": "The sending system's organ: unit of last resort."},
            "data": _array(item),
        },
    }


PROCEDURE = _record(
    "Procedure (catalogue)",
    "A procedure a unit offers, and whether online (docs/api.md §1.2).",
    {
        "MaTTHC": "Required. Procedure code.",
        "MaDonVi": "Required. GSO code or organ id.",
        "TrucTuyen": "Required. Offered as an online public service.",
        "TenTTHC": "Procedure name.",
        "MucDo": "Service level 1..4.",
        "ThoiGianGiaiQuyet": "Legal duration in working days.",
    },
)
REPORT = _record(
    "Citizen report (1022 hotline)",
    "A citizen report (docs/api.md §1.3); Đà Nẵng's Góp ý and Huế's Hue-S records are "
    "also read as they are exported.",
    {
        "id": "Required. Report id in the hotline system.",
        "received_at": "Required. ISO 8601.",
        "channel": "Required. phone, app, web, zalo, email, sms.",
        "category": "Required. environment, traffic, land, urban_order, power, water, "
        "health, education, admin_procedure, other.",
        "unit": "Required. GSO code of the place concerned.",
        "status": "Required. received, assigned, in_progress, resolved, rejected.",
        "due_at": "Processing deadline, ISO 8601.",
        "resolved_at": "ISO 8601; required when resolved.",
        "citizen_name": "Personal data: masked in every output.",
    },
)
AGENCY_REPORT = _record(
    "Report of an agency (báo cáo)",
    "A report requested of a unit for one period (docs/api.md §1.6).",
    {
        "id": "Required. The request's id in the reporting system.",
        "unit": "Required. GSO code or organ id.",
        "requested_at": "Required. ISO 8601.",
        "due_at": "Required. ISO 8601 or a date.",
        "status": "Required. requested, filed, accepted, cancelled.",
        "filed_at": "ISO 8601; required when filed or accepted.",
        "channel": "online or paper; required with filed_at.",
    },
)


def _body(description: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, "content": content}}


def _examples(**named: tuple[str, Any]) -> dict[str, Any]:
    return {key: {"summary": summary, "value": value} for key, (summary, value) in named.items()}


def dossiers() -> dict[str, Any]:
    """`openapi_extra` of `POST /api/v1/ingest/dossiers`."""
    sync = _json("dvcqg-dongbohoso.json")
    schema = {"anyOf": [_array(DOSSIER), _envelope("DongBoHoSoMC", DOSSIER),
                        _envelope("CapNhatTienDoHoSoMC", STEP)]}  # fmt: skip
    examples = _examples(
        sync=("DVCQG sync envelope (DongBoHoSoMC)", sync),
        progress=("DVCQG progress (CapNhatTienDoHoSoMC)", _json("dvcqg-capnhattiendo.json")),
        array=("A plain array of dossiers", sync["data"][:1]),
    )  # fmt: skip
    return _body(
        "A JSON array of dossiers, a DongBoHoSoMC sync envelope or a CapNhatTienDoHoSoMC "
        "progress envelope, as one-stop systems send them to DVCQG.",
        {"application/json": {"schema": schema, "examples": examples}},
    )


def procedures() -> dict[str, Any]:
    """`openapi_extra` of `POST /api/v1/ingest/procedures`."""
    examples = _examples(catalogue=("Two procedures of the catalogue", _json("procedures.json")))
    return _body(
        "A JSON array of procedures of the catalogue.",
        {"application/json": {"schema": _array(PROCEDURE), "examples": examples}},
    )


def reports() -> dict[str, Any]:
    """`openapi_extra` of `POST /api/v1/ingest/reports`."""
    page = {
        "type": "object",
        "title": "Hue-S page",
        "required": ["data"],
        "properties": {"data": _array(REPORT), "code": {}, "message": {}, "totalrow": {}},
    }
    examples = _examples(
        hotline=("1022 hotline reports", _json("reports-1022.json")),
        danang=("Đà Nẵng Góp ý export", _json("hotline-danang-gopy.json")),
        hue_s=("Huế Hue-S page", _json("hotline-hue-s-phananhhientruong.json")),
    )
    return _body(
        "A JSON array of citizen reports (1022 format, Góp ý or Hue-S records), or a Hue-S "
        "page as its API answers.",
        {"application/json": {"schema": {"anyOf": [_array(REPORT), page]}, "examples": examples}},
    )


def agency_reports() -> dict[str, Any]:
    """`openapi_extra` of `POST /api/v1/ingest/agency-reports`."""
    examples = _examples(reports=("Two reports of agencies", _json("agency-reports.json")))
    return _body(
        "A JSON array of reports of agencies.",
        {"application/json": {"schema": _array(AGENCY_REPORT), "examples": examples}},
    )


def documents() -> dict[str, Any]:
    """`openapi_extra` of `POST /api/v1/ingest/documents`."""
    schema = {
        "type": "string",
        "description": "One edXML envelope or status message (QCVN 102:2016), without a "
        "DOCTYPE; at most 8 MiB.",
    }
    examples = _examples(
        envelope=("edXML envelope (a document)", _text("edxml-document.edxml")),
        status=("edXML status message", _text("edxml-status.xml")),
    )
    content = {"schema": schema, "examples": examples}
    return _body(
        "One edXML envelope or status message.",
        dict.fromkeys(("application/xml", "text/xml", "application/soap+xml"), content),
    )
