"""Feeds for district IOCs (CONTRACT §7): subscriptions, signed ordered webhook delivery, and
record events for the `dossier`/`report`/`document` topics.

The app composes `router` and `build_services(ctx)`; the receiving side of a feed (another
`ioc` mirroring this one) is `ioc.federation`.
"""

from __future__ import annotations

from ioc.context import AppContext
from ioc.db import asyncpg_dsn
from ioc.feeds.delivery import DeliveryService
from ioc.feeds.records import RecordEventsService
from ioc.feeds.views import router
from ioc.loops import LoopService


def build_services(ctx: AppContext) -> list[LoopService]:
    """Record-event projector and delivery, both leased; both kept in `ctx.handles`."""
    settings = ctx.settings
    if not settings.feeds_enabled:
        return []
    dsn = asyncpg_dsn(ctx.db.url)
    records = RecordEventsService(
        ctx.db, dsn, loop_seconds=settings.feeds_loop_seconds, listener=ctx.listener
    )
    delivery = DeliveryService(settings, dsn, listener=ctx.listener)
    ctx.handles.add(records)
    ctx.handles.add(delivery)
    return [records, delivery]


__all__ = ["DeliveryService", "RecordEventsService", "build_services", "router"]
