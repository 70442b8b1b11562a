"""`/api/v1/personal-data`: the one place unmasked citizens' data leaves `ioc` (admin only,
with a reason, each read logged), and the access log itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ioc.api import Instant, SessionDep
from ioc.auth import Principal, authenticate, require
from ioc.privacy.service import list_access_log, read_personal

router = APIRouter(
    prefix="/api/v1/personal-data", tags=["personal data"], dependencies=[Depends(authenticate)]
)

Reason = Query(
    min_length=5,
    max_length=500,
    description="Why this citizen's data is needed (kept in the access log).",
)


class PersonalRecordOut(BaseModel):
    kind: Literal["dossier", "report"]
    source: str
    id: str
    unit: str
    personal_data: dict[str, Any]


class AccessLogOut(BaseModel):
    id: int
    at: datetime
    token_id: str
    token_name: str
    role: str
    token_unit: str | None
    record_kind: str
    record_key: str
    unit: str | None
    fields: list[str]
    reason: str
    route: str


async def _read(
    kind: Literal["dossier", "report"],
    record_id: str,
    source: str | None,
    reason: str,
    request: Request,
    session: SessionDep,
    principal: Principal,
) -> list[PersonalRecordOut]:
    records = await read_personal(
        session,
        principal,
        kind=kind,
        source_id=record_id,
        source=source,
        reason=reason,
        route=f"{request.method} {request.url.path}",
    )
    return [
        PersonalRecordOut(
            kind=kind, source=r.source, id=r.source_id, unit=r.unit_code, personal_data=r.data
        )
        for r in records
    ]


@router.get(
    "/dossiers/{record_id}",
    response_model=list[PersonalRecordOut],
    summary="The applicant's unmasked data of a dossier (admin; logged with the reason)",
    description=(
        "The applicant's name, phone, e-mail and address of a dossier, unmasked, for a stated "
        "reason that is logged. Administrators only."
    ),
)
async def dossier_personal_data(
    record_id: str,
    request: Request,
    session: SessionDep,
    reason: str = Reason,
    source: str | None = None,
    principal: Principal = Depends(require("admin")),
) -> list[PersonalRecordOut]:
    return await _read("dossier", record_id, source, reason, request, session, principal)


@router.get(
    "/reports/{record_id}",
    response_model=list[PersonalRecordOut],
    summary="The citizen's unmasked data of a 1022 report (admin; logged with the reason)",
    description=(
        "The citizen's name and phone of a hotline report, unmasked, for a stated reason that is "
        "logged. Administrators only."
    ),
)
async def report_personal_data(
    record_id: str,
    request: Request,
    session: SessionDep,
    reason: str = Reason,
    source: str | None = None,
    principal: Principal = Depends(require("admin")),
) -> list[PersonalRecordOut]:
    return await _read("report", record_id, source, reason, request, session, principal)


@router.get(
    "/access-log",
    response_model=list[AccessLogOut],
    summary="Who read which citizen's data, when and why (admin; newest first)",
    description=(
        "The log of every read of unmasked personal data: who, when, which record and why, newest "
        "first. Administrators only."
    ),
)
async def access_log(
    session: SessionDep,
    since: Instant | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    principal: Principal = Depends(require("admin")),
) -> list[AccessLogOut]:
    entries = await list_access_log(session, principal, since=since, limit=limit)
    return [
        AccessLogOut(
            id=e.id,
            at=e.at,
            token_id=e.token_id,
            token_name=e.token_name,
            role=e.role,
            token_unit=e.token_unit,
            record_kind=e.record_kind,
            record_key=e.record_key,
            unit=e.unit_code,
            fields=e.fields,
            reason=e.reason,
            route=e.route,
        )
        for e in entries
    ]
