"""The privacy room's background work: the retention purge, hourly, on one replica."""

from __future__ import annotations

import logging

from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn
from ioc.loops import LoopService
from ioc.privacy.service import purge_with_settings
from ioc.settings import Settings

log = logging.getLogger("ioc.privacy")


class PrivacyPurge(LoopService):
    """The retention purge, hourly, on one replica (leased)."""

    name = "privacy-purge"
    loop_seconds = 3600.0
    leased = True

    def __init__(self, db: Database, settings: Settings, *, loop_seconds: float | None = None):
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=loop_seconds)
        self.db = db
        self.settings = settings
        self._started_once = False

    async def run_once(self) -> None:
        # The first round comes one period after start, not at start: a purge is routine
        # maintenance, and a crash-looping process must not run it on every restart.
        if not self._started_once:
            self._started_once = True
            return
        async with self.db.session() as session:
            result = await purge_with_settings(session, self.settings)
        if any(result.counts.values()):
            log.info("privacy purge erased %s", result.counts)


def build_services(ctx: AppContext) -> list[LoopService]:
    """The retention purge (leased)."""
    return [PrivacyPurge(ctx.db, ctx.settings)]
