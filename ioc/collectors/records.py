"""Typed records the parsers produce and the ingest pipeline stores.

Vietnamese source field names stop at the parsers; from here on the domain's names are used
(`MaHoSo` → `source_id`, `MaDonVi` → `unit_ref`…). `docs/collectors.md` has the full table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
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
        """The CONTRACT §2 response body."""
        return {
            "accepted": self.accepted,
            "rejected": [
                {"index": r.index, "id": r.record_id, "errors": r.errors} for r in self.rejected
            ],
        }
