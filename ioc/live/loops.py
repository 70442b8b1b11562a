"""The live room's loop services: the hub's tail, its ticker, and the event-log retention."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from ioc import metrics
from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn
from ioc.events import EVENTS_CHANNEL, TOKENS_CHANNEL, purge_before
from ioc.live.hub import Hub
from ioc.live.snapshot import snapshot_builder
from ioc.loops import LoopService
from ioc.settings import Settings

log = logging.getLogger("ioc.live")


class LiveTail(LoopService):
    """Reads new kpi/alert events and fans them out; woken by NOTIFY, polls every second
    in case a notification was lost (one per process, not leased: every replica has screens)."""

    name = "live.tail"
    loop_seconds = 1.0

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        hub.set_waker(self.wake)

    async def run_once(self) -> None:
        try:
            await self.hub.catch_up()
        except Exception as exc:
            # The log cannot be read: the figures on every screen stop being current, and
            # the screens are told so (the loop service logs and retries the error itself).
            self.hub.database_state(ok=False, detail=type(exc).__name__)
            raise
        self.hub.database_state(ok=True)

    async def stop(self) -> None:
        await super().stop()
        await self.hub.close()


class LiveTicker(LoopService):
    """Pings idle screens, cuts off stuck and silent ones, re-checks tokens; closes every
    screen with 1001 when the app stops."""

    name = "live.ticker"
    loop_seconds = 1.0

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self._checked = time.monotonic()

    def on_token_revoked(self, _payload: str | None) -> None:
        """`ioc token revoke` notifies at commit: re-check now instead of at the period's end
        (also called after a listener reconnect, when a revocation may have been missed)."""
        self._checked = float("-inf")
        self.wake()

    async def run_once(self) -> None:
        self.hub.tick()
        if time.monotonic() - self._checked >= self.hub.settings.ws_auth_recheck_seconds:
            self._checked = time.monotonic()
            try:
                await self.hub.recheck_tokens()
            except (OSError, SQLAlchemyError) as exc:
                # not a failed round: the pings above must keep their one-second rhythm
                # (a failing round would back off); the next period checks again
                log.warning("live: token re-check failed (%s); retrying next period", exc)

    async def stop(self) -> None:
        await self.hub.shutdown()
        await super().stop()


class EventRetention(LoopService):
    """Deletes events older than `events_retention_hours` (leased: one replica purges).

    A screen resuming with a `since` older than what is left gets a fresh snapshot."""

    name = "live.retention"
    leased = True

    def __init__(self, db: Database, settings: Settings, *, dsn: str | None) -> None:
        super().__init__(dsn=dsn, loop_seconds=settings.events_purge_seconds)
        self.db = db
        self.retention = timedelta(hours=settings.events_retention_hours)

    async def run_once(self) -> None:
        cutoff = datetime.now(UTC) - self.retention
        async with self.db.session() as session:
            purged = await purge_before(session, cutoff)
        metrics.LIVE_EVENTS_PURGED.inc(purged)


def build_services(ctx: AppContext) -> list[LoopService]:
    """Build the process's hub (kept in `ctx.handles`) and its services."""
    hub = Hub(ctx.db, ctx.settings, snapshot_builder=snapshot_builder(ctx.settings))
    ctx.handles.add(hub)
    ctx.listener.subscribe(EVENTS_CHANNEL, hub.on_notify)
    ticker = LiveTicker(hub)
    ctx.listener.subscribe(TOKENS_CHANNEL, ticker.on_token_revoked)
    return [
        LiveTail(hub),
        ticker,
        EventRetention(ctx.db, ctx.settings, dsn=asyncpg_dsn(ctx.db.url)),
    ]
