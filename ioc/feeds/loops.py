"""The feeds room's background work: the record-event projector and the delivery."""

from __future__ import annotations

from ioc.context import AppContext
from ioc.db import asyncpg_dsn
from ioc.feeds.delivery import DeliveryService
from ioc.feeds.records import RecordEventsService
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
