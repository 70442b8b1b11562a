"""The scorecard room's background work, each a leased `LoopService` (one replica does it):

- `ScorecardPublisher`: the current month's scorecard of every unit whose 766 indicators
  changed (their `kpi` events) or that got an entered value, recomputed and published as a
  `scorecard` event when it differs from the last one — screens and feeds get it like a KPI.
- `MonthCloser`: when the month is over (APScheduler's time-zone-aware cron trigger,
  `IOC_SCORECARD_CLOSE_CRON`), stores every unit's scorecard of that month for good.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn
from ioc.events import NewEvent, latest, publish, read_since
from ioc.localtime import LOCAL_TZ, LOCAL_TZ_NAME, local_date
from ioc.loops import LoopService
from ioc.scorecards.definition import DECISION_766
from ioc.scorecards.periods import Period, month_period
from ioc.scorecards.service import SCORECARD, close_period, read_scorecard
from ioc.scorecards.tables import indicator_values
from ioc.settings import Settings
from ioc.units import Unit, get_unit

log = logging.getLogger("ioc.scorecards")

# The KPIs a scorecard is made of: a `kpi` event of one of them may change it.
SCORED_KPIS = frozenset(i.kpi for i in DECISION_766.indicators.values() if i.kpi)
_PAGE = 1000


def scorecard_event(card_json: dict[str, object], unit: str) -> NewEvent:
    return NewEvent(
        "scorecard", {"scorecard": card_json}, unit_code=unit, time_window="month",
        subject=SCORECARD,
    )  # fmt: skip


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    """Equal but for when it was computed."""
    ignore = {"computed_at"}
    return {k: v for k, v in a.items() if k not in ignore} == {
        k: v for k, v in b.items() if k not in ignore
    }


async def publish_changed(session: AsyncSession, units: set[str], now: datetime) -> int:
    """Publish the current month's scorecard of each unit that differs from its last event."""
    published = 0
    events: list[NewEvent] = []
    for unit in sorted(units):
        card = await read_scorecard(session, unit, "month", now=now)
        body = card.model_dump(mode="json", by_alias=True)
        last = await latest(session, type="scorecard", unit=unit, subject=SCORECARD, window="month")
        if last is not None and _same(last.payload.get("scorecard", {}), body):
            continue
        events.append(scorecard_event(body, unit))
        published += 1
    if events:
        await publish(session, events)
    return published


class ScorecardPublisher(LoopService):
    name = "scorecards.publisher"
    leased = True

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=settings.scorecard_live_seconds)
        self.db = db
        self.cursor: int | None = None
        self.entered_cursor: int | None = None

    async def run_once(self) -> None:
        async with self.db.session() as session:
            if self.cursor is None:
                # From the last scorecard published (a restart misses nothing), else from now.
                start = (
                    await session.execute(
                        text(
                            "SELECT coalesce(max(last_seq), (SELECT coalesce(max(last_seq), 0) "
                            "FROM events)) FROM events WHERE type = 'scorecard'"
                        )
                    )
                ).scalar_one()
                self.cursor = int(start)
                self.entered_cursor = (
                    await session.execute(select(func.coalesce(func.max(indicator_values.c.id), 0)))
                ).scalar_one()
            units: set[str] = set()
            while True:
                page = await read_since(session, self.cursor, limit=_PAGE, types=["kpi"])
                for event in page:
                    self.cursor = event.seq
                    if (
                        event.subject in SCORED_KPIS
                        and event.time_window == "month"
                        and event.unit_code
                    ):
                        units.add(event.unit_code)
                if len(page) < _PAGE:
                    break
            entered = await session.execute(
                select(indicator_values.c.id, indicator_values.c.unit_code).where(
                    indicator_values.c.id > self.entered_cursor
                )
            )
            for ident, unit in entered:
                self.entered_cursor = max(self.entered_cursor or 0, ident)
                units.add(unit)
            if units:
                count = await publish_changed(session, units, datetime.now(UTC))
                log.debug("scorecards: %d units looked at, %d published", len(units), count)


class MonthCloser(LoopService):
    """Stores the scorecards of the month just over, once its close moment has come."""

    name = "scorecards.closer"
    leased = True

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=60.0)
        self.db = db
        self.trigger = CronTrigger.from_crontab(
            settings.scorecard_close_cron, timezone=LOCAL_TZ_NAME
        )
        self.closed: str | None = None

    def due(self, now: datetime) -> Period | None:
        """The month to close at `now`: the one before this, once the trigger's first fire
        after that month's end has come."""
        last = month_period(local_date(now)).previous()
        if self.closed == last.name:
            return None
        ended = datetime.combine(last.end + timedelta(days=1), time(), LOCAL_TZ)
        fire = self.trigger.get_next_fire_time(None, ended)
        return last if fire is not None and now >= fire else None

    async def run_once(self) -> None:
        now = datetime.now(UTC)
        period = self.due(now)
        if period is None:
            return
        async with self.db.session() as session:
            codes = (await session.execute(text("SELECT code FROM units ORDER BY code"))).scalars()
            units: list[Unit] = [await get_unit(session, c) for c in codes.all()]
            stored = await close_period(session, units, period)
        self.closed = period.name
        log.info("scorecards: %s closed (%d units stored now)", period.name, stored)


def build_services(ctx: AppContext) -> list[LoopService]:
    publisher = ScorecardPublisher(ctx.db, ctx.settings)
    closer = MonthCloser(ctx.db, ctx.settings)
    ctx.handles.add(publisher)
    ctx.handles.add(closer)
    return [publisher, closer]
