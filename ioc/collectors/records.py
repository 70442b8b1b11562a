"""Typed records the parsers produce and the ingest pipeline stores.

Vietnamese source field names stop at the parsers; from here on the domain's names are used
(`MaHoSo` → `source_id`, `MaDonVi` → `unit_ref`…). `docs/collectors.md` has the full table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(slots=True)
class Rejection:
    """One record that could not be taken in: its place in the batch, id and reasons."""

    index: int
    record_id: str | None
    errors: list[str]
    payload: str
    format: str
    unit_ref: str | None = None


@dataclass(slots=True)
class DossierRecord:
    index: int
    source_id: str
    procedure_code: str
    procedure_name: str | None
    sector_code: str | None
    sector_name: str | None
    channel: int
    unit_ref: str
    received_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    returned_at: datetime | None
    status: int
    service_level: int | None
    digitized: bool
    paid_online: bool
    applicant_name: str | None
    applicant_phone: str | None
    applicant_email: str | None
    applicant_address: str | None
    source_updated_at: datetime
    raw: str
    unit_code: str | None = None
    # Where the unit may come from when `MaDonVi` is absent, in order (docs/api.md §1.1): the
    # organ code prefixing `MaHoSo`, then the sync envelope's `madonvi`.
    unit_given: bool = True  # MaDonVi was sent (else `unit_ref` is the first fallback)
    unit_fallbacks: tuple[str, ...] = ()
    # The 766 facts (docs/collectors.md, "Dossier facts for the 766 indicators").
    paid_online_code: int | None = None
    result_files: int = 0
    e_result: bool = False
    fee_total: Decimal = Decimal(0)
    data_reused: bool = False
    vneid_verified: bool = False
    national_db_used: bool = False
    refused_at: datetime | None = None
    closed_at: datetime | None = None
    supplement_list: list[Supplement] = field(default_factory=list)
    due_moved_at: datetime | None = None

    @property
    def accepted(self) -> bool:
        """As first seen: not accepted while registered online (1), see docs/collectors.md."""
        return self.status != 1

    # Named as the columns they fill (`dossiers.supplements` is the list as JSON text).
    @property
    def supplements(self) -> str:
        return json.dumps([s.as_json() for s in self.supplement_list])

    @property
    def supplement_count(self) -> int:
        return len(self.supplement_list)

    @property
    def supplement_requested_at(self) -> datetime | None:
        times = [s.requested_at for s in self.supplement_list if s.requested_at is not None]
        return max(times) if times else None

    @property
    def supplement_seconds(self) -> int:
        return sum(s.seconds for s in self.supplement_list)


@dataclass(frozen=True, slots=True)
class Supplement:
    """One request to the citizen for more documents (`DanhSachHoSoBoSung[]`)."""

    requested_at: datetime | None  # NgayBoSung
    completed_at: datetime | None  # NgayTiepNhanBoSung
    due_before: datetime | None  # NgayHenTraTruoc
    due_after: datetime | None  # NgayHenTraMoi

    @property
    def seconds(self) -> int:
        """The completed pause (0 while open, or when the source's times are backwards)."""
        if self.requested_at is None or self.completed_at is None:
            return 0
        return max(0, int((self.completed_at - self.requested_at).total_seconds()))

    def as_json(self) -> dict[str, str | None]:
        return {
            "requested_at": _iso(self.requested_at),
            "completed_at": _iso(self.completed_at),
            "due_before": _iso(self.due_before),
            "due_after": _iso(self.due_after),
        }


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


@dataclass(slots=True)
class ProgressStep:
    """One processing step of a dossier (`CapNhatTienDoHoSoMC`)."""

    index: int
    source_id: str
    status: int
    at: datetime
    actor: str | None
    department: str | None
    note: str | None
    raw: str


@dataclass(slots=True)
class ProcedureRecord:
    index: int
    code: str
    name: str | None
    sector_code: str | None
    service_level: int | None
    online: bool
    unit_ref: str
    raw: str
    unit_code: str | None = None
    legal_days: Decimal | None = None


@dataclass(slots=True)
class ReportRecord:
    index: int
    source_id: str
    received_at: datetime
    channel: str
    category: str
    unit_ref: str
    status: str
    assigned_to: str | None
    due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    title: str | None
    content: str | None
    citizen_name: str | None
    citizen_phone: str | None
    lat: float | None
    lon: float | None
    source_updated_at: datetime
    raw: str
    format: str = "report"
    unit_code: str | None = None
    rating: str | None = None  # "satisfied" | "dissatisfied"
    rejected_at: datetime | None = None


@dataclass(slots=True)
class AgencyReportRecord:
    """A report of an agency (*báo cáo*) requested of a unit for one period
    (`ioc.collectors.agency_reports`); not the hotline's citizen reports (`ReportRecord`)."""

    index: int
    source_id: str
    unit_ref: str
    regime: str | None
    title: str | None
    period: str | None
    frequency: str | None
    receiver: str | None
    requested_at: datetime
    due_at: datetime
    status: str
    filed_at: datetime | None
    channel: str | None
    source_updated_at: datetime
    raw: str
    format: str = "agency_report"
    unit_code: str | None = None


@dataclass(slots=True)
class Attachment:
    name: str
    content_type: str | None
    size: int | None


@dataclass(slots=True)
class DocumentRecord:
    document_id: str
    sender_organ: str
    recipients: list[str]
    code_number: str | None
    code_notation: str | None
    promulgated_on: date | None
    document_type: str | None
    document_type_name: str | None
    subject: str | None
    signer_name: str | None
    due_on: date | None
    priority: int | None
    steering_type: int | None
    electronic: bool
    business_type: int | None
    sent_at: datetime
    attachments: list[Attachment] = field(default_factory=list)
    raw_xml: str = ""


@dataclass(slots=True)
class StatusRecord:
    document_id: str
    organ_id: str
    status_code: str
    at: datetime
    description: str | None
    department: str | None
    staff: str | None
    raw_xml: str = ""


@dataclass(slots=True)
class IngestResult:
    """What one batch did. `accepted` counts valid records, changed or not."""

    feed: str
    accepted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        """The docs/api.md §2 response body."""
        return {
            "accepted": self.accepted,
            "rejected": [
                {"index": r.index, "id": r.record_id, "errors": r.errors} for r in self.rejected
            ],
        }
