"""Routes of the federation room: the upstream's mirrored KPI values and the signed inbox."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ioc.api import SessionDep, get_ctx
from ioc.auth import Principal, authenticate, require
from ioc.errors import IocError
from ioc.federation import service
from ioc.federation.models import FederatedKpis, InboxOut
from ioc.units import scoped_unit


class PayloadTooLarge(IocError):
    status = 413
    title = "Payload too large"
    type_slug = "too-large"


federation_router = APIRouter(
    prefix="/api/v1/federation", tags=["federation"], dependencies=[Depends(authenticate)]
)


@federation_router.get(
    "/kpis",
    response_model=FederatedKpis,
    summary="The upstream ioc's latest KPI values for a unit",
    description=(
        "The KPI values this ioc received from the provincial (upstream) ioc for a unit. Any "
        "reading role, for units within its token's unit."
    ),
)
async def federated_kpis(
    session: SessionDep,
    principal: Principal = Depends(require("operator")),
    unit: str | None = None,
    window: str | None = None,
) -> FederatedKpis:
    code = await scoped_unit(session, principal, unit)
    return await service.federated_kpis(session, code, window)


# The inbox is called by another ioc's feed worker, which authenticates by signing each
# delivery (Standard Webhooks) instead of sending a bearer token: no `authenticate` here.
inbox_router = APIRouter(prefix="/api/v1/federation", tags=["federation"])


@inbox_router.post(
    "/inbox",
    response_model=InboxOut,
    summary="Receive a signed delivery from the upstream ioc",
    description=(
        "The provincial ioc delivers events here to a district's ioc. No bearer token: each "
        "delivery is signed (Standard Webhooks) with the shared `IOC_FEDERATION_SECRET`, and a "
        "wrong signature or an old timestamp is refused with 401."
    ),
    responses={
        401: {
            "description": "Missing or wrong signature, or a timestamp outside ±5 min "
            "(`/problems/unauthorized`)."
        },
        413: {"description": "A body over 1 MiB (`/problems/too-large`)."},
        503: {
            "description": "`IOC_FEDERATION_SECRET` is not set on this ioc, or the database "
            "is unreachable (`/problems/unavailable`)."
        },
    },
)
async def inbox(request: Request, session: SessionDep) -> JSONResponse:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > service.INBOX_MAX_BYTES:
        raise PayloadTooLarge(f"a delivery is at most {service.INBOX_MAX_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # chunked bodies too: stop at the limit
        size += len(chunk)
        if size > service.INBOX_MAX_BYTES:
            raise PayloadTooLarge(f"a delivery is at most {service.INBOX_MAX_BYTES} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    settings = get_ctx(request).settings
    out = await service.receive(
        session,
        settings.federation_secret,
        dict(request.headers),
        body,
        mirror=settings.federation_kpis == "upstream",
        scope_unit=settings.federation_unit,
    )
    return JSONResponse(out.model_dump())


# Both under /api/v1/federation; each keeps its own dependencies.
router = APIRouter()
router.include_router(federation_router)
router.include_router(inbox_router)
