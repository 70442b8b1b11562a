"""Push endpoints (docs/api.md §2) and the dead-letter store, over HTTP. Thin: read the body
within limits, call the service in the request's unit of work (`SessionDep`: committed
when the route returns, before the response is sent), shape the answer."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from pydantic import BaseModel, Field

from ioc import metrics
from ioc.api import SessionDep, get_ctx, request_json
from ioc.auth import SOURCE_PATTERN, Principal, authenticate, require, source_name
from ioc.collectors import bodies
from ioc.collectors.deadletters import list_dead_letters, read_dead_letter
from ioc.collectors.edxml import TooLarge
from ioc.collectors.records import IngestResult
from ioc.collectors.service import (
    FEEDS,
    BadBody,
    XmlLimits,
    count,
    ingest_json,
    ingest_xml,
    replay_dead_letters,
)
from ioc.errors import IocError

router = APIRouter(prefix="/api/v1", tags=["ingest"], dependencies=[Depends(authenticate)])

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml", "application/soap+xml")


class UnsupportedType(IocError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class IngestResponse(BaseModel):
    accepted: int = Field(description="Valid records (stored, or already stored unchanged).")
    rejected: list[dict[str, Any]] = Field(
        description="`{index, id, errors}` per rejected record; each is kept as a dead-letter."
    )


def _source(principal: Principal, source: str | None) -> str:
    """`?source=` as given, else the token's name as a source (its ASCII slug)."""
    name = source or source_name(principal.name)
    if not SOURCE_PATTERN.match(name):
        raise BadBody(f"source {name!r}: use 1-64 letters, digits, '.', '_', ':' or '-'")
    return name


def _media_type(request: Request, allowed: tuple[str, ...]) -> None:
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given not in allowed:
        raise UnsupportedType(f"Content-Type {given or '(none)'!r}; send {' or '.join(allowed)}")


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


SourceParam = Annotated[
    str | None,
    Query(pattern=SOURCE_PATTERN.pattern,
          description="Source system name (records are keyed by source + id); default: the "
          "token's name, as an ASCII slug when it has other characters "
          "('Cổng dịch vụ công tỉnh' → 'cong-dich-vu-cong-tinh')."),
]  # fmt: skip


MaDonViParam = Annotated[
    str | None,
    Query(description="The sending system's organ id (or unit code), for senders that post a "
          "plain array: the unit of last resort for dossiers that name none (docs/api.md §1.1), "
          "as a sync envelope's `madonvi`; for Hue-S reports, the organ the export was "
          "requested for."),
]  # fmt: skip


def _counted(
    background: BackgroundTasks, feed: str, source: str, result: IngestResult, started: float
) -> IngestResponse:
    """The answer; the batch is counted in /metrics once committed. A background task runs
    only after the response, and the response is sent only after the unit of work has
    committed, so a batch whose commit fails counts nothing (as `count` requires)."""

    def observe() -> None:
        count(source, result)
        metrics.INGEST_BATCH_DURATION.labels(feed).observe(time.perf_counter() - started)

    background.add_task(observe)
    return IngestResponse(**result.response())


async def _ingest_json(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    feed: str,
    principal: Principal,
    source: str | None,
    madonvi: str | None = None,
) -> IngestResponse:
    """A JSON body of `feed`, in the request's unit of work."""
    ctx = get_ctx(request)
    _media_type(request, JSON_TYPES)
    name = _source(principal, source)
    # The input-limits middleware has usually parsed and checked the body already.
    body = request_json(request)
    if body is None:
        raw = await _body(request, ctx.settings.ingest_max_body_bytes)
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadBody(f"body is not JSON: {exc}") from None
    started = time.perf_counter()
    result = await ingest_json(
        session, feed, name, body,
        max_records=ctx.settings.ingest_max_records, scope=principal.unit_code,
        madonvi=madonvi,
    )  # fmt: skip
    return _counted(background, feed, name, result, started)


# What an ingest route may answer besides the errors every route may (ioc.api.openapi).
INGEST_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not the format of this endpoint at all, or a bad `source`: nothing "
          "was stored (`/problems/bad-body`, `/problems/bad-xml`, `/problems/json-malformed`)."},
    415: {"description": "Wrong `Content-Type` (`/problems/unsupported-media-type`)."},
    422: {"description": "More than 10,000 records (`/problems/json-array-too-long`) or another "
          "JSON limit passed; nothing was stored."},
}  # fmt: skip


@router.post(
    "/ingest/dossiers",
    summary="Push dossiers (array, DongBoHoSoMC or CapNhatTienDoHoSoMC)",
    description="A one-stop (public-service) system sends its dossiers here, as it syncs them "
    "to the National Public Service Portal: the records of its units are stored and counted "
    "in the KPIs; each invalid record is listed in `rejected` and kept as a dead-letter. "
    "Sending the same batch again changes nothing.",
    responses=INGEST_ERRORS,
    openapi_extra=bodies.dossiers(),
)
async def push_dossiers(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    source: SourceParam = None,
    madonvi: MaDonViParam = None,
    principal: Principal = Depends(require("collector")),
) -> IngestResponse:
    return await _ingest_json(request, session, background, "dossiers", principal, source, madonvi)


@router.post(
    "/ingest/procedures",
    summary="Push the procedure catalogue (array)",
    description="The provincial one-stop system sends which administrative procedures each "
    "unit offers, and which are online public services (for the online-service usage KPI). "
    "The last record received for a procedure and unit wins.",
    responses=INGEST_ERRORS,
    openapi_extra=bodies.procedures(),
)
async def push_procedures(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    source: SourceParam = None,
    principal: Principal = Depends(require("collector")),
) -> IngestResponse:
    return await _ingest_json(request, session, background, "procedures", principal, source)


@router.post(
    "/ingest/reports",
    summary="Push citizen reports (docs/api.md §1.3, Góp ý or Hue-S shape)",
    description="The citizen hotline (1022) or a province's feedback system sends its reports "
    "here; each report is stored and updated by its id, and its status changes are kept. "
    "Invalid records are listed in `rejected` and kept as dead-letters.",
    responses=INGEST_ERRORS,
    openapi_extra=bodies.reports(),
)
async def push_reports(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    source: SourceParam = None,
    madonvi: MaDonViParam = None,
    principal: Principal = Depends(require("collector")),
) -> IngestResponse:
    return await _ingest_json(request, session, background, "reports", principal, source, madonvi)


@router.post(
    "/ingest/agency-reports",
    summary="Push reports of agencies (báo cáo: requested, due, filed online or on paper)",
    description="The provincial reporting system sends the reports it requested of each "
    "unit, their deadlines and when and how they were filed; each is stored and updated by "
    "its id. Invalid records are listed in `rejected` and kept as dead-letters.",
    responses=INGEST_ERRORS,
    openapi_extra=bodies.agency_reports(),
)
async def push_agency_reports(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    source: SourceParam = None,
    principal: Principal = Depends(require("collector")),
) -> IngestResponse:
    """An array of agency reports (docs/collectors.md, "Reports of agencies"); each record
    is stored once per (source, id), a record that is not valid is dead-lettered with its
    reasons and the others are stored."""
    return await _ingest_json(request, session, background, "agency_reports", principal, source)


@router.post(
    "/ingest/documents",
    summary="Push one edXML envelope or status message",
    description="The e-document exchange system sends one edXML document or one status "
    "message (received, assigned, completed…) per request, as XML. Its organs are mapped to "
    "units through the organ mapping; a document of no known organ is dead-lettered.",
    responses=INGEST_ERRORS,
    openapi_extra=bodies.documents(),
)
async def push_document(
    request: Request,
    session: SessionDep,
    background: BackgroundTasks,
    source: SourceParam = None,
    principal: Principal = Depends(require("collector")),
) -> IngestResponse:
    ctx = get_ctx(request)
    _media_type(request, XML_TYPES)
    name = _source(principal, source)
    limits = XmlLimits(ctx.settings.xml_max_bytes, ctx.settings.xml_max_depth)
    raw = await _body(request, limits.max_bytes)
    started = time.perf_counter()
    result = await ingest_xml(session, name, [raw], limits=limits, scope=principal.unit_code)
    return _counted(background, "documents", name, result, started)


@router.get(
    "/dead-letters",
    tags=["dead-letters"],
    summary="Rejected records (admin only)",
    description=(
        "The records source systems sent that were rejected, with the reasons, personal data "
        "masked; page through with `after_id`. Administrators only."
    ),
)
async def get_dead_letters(
    session: SessionDep,
    pending: bool = True,
    source: str | None = None,
    feed: Annotated[str | None, Query(pattern="^(" + "|".join(FEEDS) + ")$")] = None,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    """Dead-letters oldest first, citizens' data in the payload masked (`payload` is null
    where it cannot be masked: edXML, non-JSON; see `payload_bytes`). The raw payload:
    `GET /api/v1/dead-letters/{id}/payload?reason=…` (logged). Page with `after_id` = the
    last id seen."""
    letters = await list_dead_letters(
        session, pending=pending, source=source, feed=feed, after_id=after_id, limit=limit
    )
    return {
        "items": [d.as_dict() for d in letters],
        "next_after_id": letters[-1].id if len(letters) == limit else None,
    }


class ReplayRequest(BaseModel):
    ids: list[int] | None = Field(
        default=None, description="Dead-letter ids; omit for all pending."
    )


@router.post(
    "/dead-letters/replay",
    tags=["dead-letters"],
    summary="Replay dead-letters (admin)",
    description=(
        "Runs rejected records through ingestion again, e.g. after loading missing units or organs;"
        " all pending ones when no ids are given. Administrators only."
    ),
    responses={
        404: {
            "description": "An id does not exist or was already replayed (`/problems/not-found`)."
        }
    },
)
async def post_replay(
    request: Request,
    session: SessionDep,
    body: ReplayRequest,
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    ctx = get_ctx(request)
    limits = XmlLimits(ctx.settings.xml_max_bytes, ctx.settings.xml_max_depth)
    outcomes = await replay_dead_letters(session, body.ids, limits=limits)
    return {
        "replayed": len(outcomes),
        "accepted": sum(o.accepted for o in outcomes),
        "results": [{"id": o.id, "accepted": o.accepted, "errors": o.errors} for o in outcomes],
    }


@router.get(
    "/dead-letters/{dead_letter_id}/payload",
    tags=["dead-letters"],
    summary="One dead-letter with its raw payload unmasked (admin; logged with the reason)",
    description=(
        "One rejected record exactly as it was sent, personal data included, for a stated reason "
        "that is logged. Administrators only."
    ),
)
async def get_dead_letter_payload(
    dead_letter_id: int,
    request: Request,
    session: SessionDep,
    reason: Annotated[
        str,
        Query(
            min_length=5,
            max_length=500,
            description="Why the raw payload is needed (kept in the personal-data access log).",
        ),
    ],
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    letter = await read_dead_letter(
        session, principal, dead_letter_id, reason=reason,
        route=f"{request.method} {request.url.path}",
    )  # fmt: skip
    return letter.as_dict(masked=False)
