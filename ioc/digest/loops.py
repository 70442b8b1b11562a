"""The weekly digest's schedule: APScheduler's time-zone-aware cron trigger says when
(`IOC_DIGEST_CRON`, default Monday 07:30 Asia/Ho_Chi_Minh); a leased `LoopService` decides
which replica sends; `digest_sends` makes each recipient's digest go out once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn
from ioc.digest.content import last_week
from ioc.digest.service import send_week, week_done
from ioc.localtime import LOCAL_TZ_NAME
from ioc.loops import LoopService
from ioc.settings import Settings


class DigestSender(LoopService):
    name = "digest.sender"
    leased = True

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=60.0)
        self.db = db
        self.settings = settings
        self.trigger = CronTrigger.from_crontab(settings.digest_cron, timezone=LOCAL_TZ_NAME)

    def due(self, now: datetime) -> date | None:
        """The week whose digest is due at `now`: the last fire time of the trigger within
        the past 7 days has come; the digest covers the week before that fire's week."""
        fire = self.trigger.get_next_fire_time(None, now - timedelta(days=7))
        last = None
        while fire is not None and fire <= now:
            last = fire
            fire = self.trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return None if last is None else last_week(last)

    async def run_once(self) -> None:
        week = self.due(datetime.now(UTC))
        if week is None:
            return
        async with self.db.session() as session:
            if await week_done(session, week):
                return
        await send_week(self.db, self.settings, week)


def build_services(ctx: AppContext) -> list[LoopService]:
    if not ctx.settings.digest_enabled:
        return []
    sender = DigestSender(ctx.db, ctx.settings)
    ctx.handles.add(sender)
    return [sender]
