"""Routes of the feeds room: subscriptions (docs/api.md §7), their deliveries and replays."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Query, Request, Response

from ioc.api import SessionDep, get_ctx
from ioc.auth import Principal, authenticate, require
from ioc.feeds import service
from ioc.feeds.models import (
    DeliveryOut,
    ReplayOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)
from ioc.units import scoped_unit

router = APIRouter(
    prefix="/api/v1/subscriptions", tags=["feeds"], dependencies=[Depends(authenticate)]
)


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionWithSecret,
    summary="Subscribe a URL to a unit's events (the secret is shown only here)",
    description=(
        "A district IOC (or another system) registers a web address to receive a unit's events "
        "(KPIs, alerts, records) as signed webhooks; the signing secret is shown only in this "
        "answer. District tokens within their unit, and administrators."
    ),
)
async def create_subscription(
    body: SubscriptionCreate,
    request: Request,
    session: SessionDep,
    principal: Principal = Depends(require("district")),
) -> SubscriptionWithSecret:
    await scoped_unit(session, principal, body.unit)
    settings = get_ctx(request).settings
    return await service.create_subscription(
        session, principal, body, allow_private=settings.webhooks_allow_private
    )


@router.get(
    "",
    response_model=list[SubscriptionOut],
    summary="Subscriptions within your unit",
    description=(
        "The feed subscriptions of the token's unit and the units below it, with their delivery "
        "status. District tokens and administrators."
    ),
)
async def list_subscriptions(
    session: SessionDep, principal: Principal = Depends(require("district"))
) -> list[SubscriptionOut]:
    return await service.list_subscriptions(session, principal)


@router.get(
    "/{sub_id}",
    response_model=SubscriptionOut,
    summary="One subscription: status, why it is failing, cursor, retry clock",
    description=(
        "One feed subscription: whether deliveries succeed, why they fail, and where delivery has "
        "reached. District tokens within their unit, and administrators."
    ),
)
async def read_subscription(
    sub_id: uuid.UUID, session: SessionDep, principal: Principal = Depends(require("district"))
) -> SubscriptionOut:
    return await service.get_subscription(session, principal, sub_id)


@router.patch(
    "/{sub_id}",
    response_model=SubscriptionOut,
    summary="Change URL, topics, filters, contact; pause or resume",
    description=(
        "Changes a feed subscription's address, topics, filters or contact, or pauses and resumes "
        "it. District tokens within their unit, and administrators."
    ),
)
async def update_subscription(
    sub_id: uuid.UUID,
    body: SubscriptionUpdate,
    request: Request,
    session: SessionDep,
    principal: Principal = Depends(require("district")),
) -> SubscriptionOut:
    settings = get_ctx(request).settings
    return await service.update_subscription(
        session, principal, sub_id, body, allow_private=settings.webhooks_allow_private
    )


@router.delete(
    "/{sub_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a subscription and its delivery log",
    description=(
        "Stops a feed subscription for good and deletes its delivery log. District tokens within "
        "their unit, and administrators."
    ),
)
async def delete_subscription(
    sub_id: uuid.UUID, session: SessionDep, principal: Principal = Depends(require("district"))
) -> Response:
    await service.delete_subscription(session, principal, sub_id)
    return Response(status_code=204)


@router.post(
    "/{sub_id}/rotate-secret",
    response_model=SubscriptionWithSecret,
    summary="New secret (shown once); the old one also signs during the grace period",
    description=(
        "Issues a new signing secret for a subscription (shown once); the old one keeps signing for"
        " the grace period so the receiver can switch. District tokens within their unit, and "
        "administrators."
    ),
)
async def rotate_secret(
    sub_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Principal = Depends(require("district")),
    grace_seconds: float | None = Query(default=None, ge=0, le=7 * 86400),
) -> SubscriptionWithSecret:
    grace = grace_seconds
    if grace is None:
        grace = get_ctx(request).settings.feeds_secret_grace_seconds
    return await service.rotate_secret(session, principal, sub_id, grace_seconds=grace)


@router.post(
    "/{sub_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    summary="Re-send every matching event after seq `since`, in order",
    description=(
        "Sends again, in order, every event after a sequence number, e.g. after the receiver lost "
        "data. District tokens within their unit, and administrators."
    ),
)
async def replay(
    sub_id: uuid.UUID,
    session: SessionDep,
    since: int = Query(ge=0),
    principal: Principal = Depends(require("district")),
) -> ReplayOut:
    return await service.replay(session, principal, sub_id, since)


@router.get(
    "/{sub_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="Delivery log, newest first: one row per attempt",
    description=(
        "Each delivery attempt of a subscription with its HTTP status, error and latency, newest "
        "first. District tokens within their unit, and administrators."
    ),
)
async def list_deliveries(
    sub_id: uuid.UUID,
    session: SessionDep,
    principal: Principal = Depends(require("district")),
    limit: int = Query(default=100, ge=1, le=1000),
    before: int | None = Query(default=None, description="Only rows with id below this."),
) -> list[DeliveryOut]:
    return await service.list_deliveries(session, principal, sub_id, limit=limit, before=before)
