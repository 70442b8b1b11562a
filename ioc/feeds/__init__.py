"""Feeds for district IOCs (CONTRACT §7): subscriptions, signed ordered webhook delivery,
record events for the `dossier`/`report`/`document` topics, and the federation inbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ioc.db.engine import asyncpg_dsn
from ioc.feeds.delivery import DeliveryService, backoff_seconds
from ioc.feeds.federation import UPSTREAM, upstream_kpis
from ioc.feeds.records import RecordEventsService, project_table
from ioc.feeds.stream import body_of, matches, webhook_id
from ioc.services import LoopService

if TYPE_CHECKING:
    from fastapi import APIRouter

    from ioc.api.app import AppContext


def routers() -> list[APIRouter]:
    """The feeds room's routers (subscriptions, federation reads, the signed inbox)."""
    from ioc.feeds.views import federation_router, inbox_router, router

    return [router, federation_router, inbox_router]


def build_services(ctx: AppContext) -> list[LoopService]:
    """Record-event projector and delivery, both leased; handles kept in `ctx.rooms`."""
    settings = ctx.settings
    if not settings.feeds_enabled:
        return []
    dsn = asyncpg_dsn(ctx.db.url)
    records = RecordEventsService(
        ctx.db, dsn, loop_seconds=settings.feeds_loop_seconds, listener=ctx.listener
    )
    delivery = DeliveryService(settings, dsn, listener=ctx.listener)
    ctx.rooms["feeds"] = {"records": records, "delivery": delivery}
    return [records, delivery]


__all__ = [
    "UPSTREAM",
    "DeliveryService",
    "RecordEventsService",
    "backoff_seconds",
    "body_of",
    "build_services",
    "matches",
    "project_table",
    "routers",
    "upstream_kpis",
    "webhook_id",
]
