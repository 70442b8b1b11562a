"""The alert room's background work: the evaluator and the sender, each a leased
`LoopService` (one replica does it; another takes over within `loop_seconds` if it dies)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from ioc import metrics
from ioc.alerts.evaluator import evaluate_round, outbox_health, state_counts
from ioc.alerts.notify import SMTP_UNSET
from ioc.alerts.rules import count_email_rules
from ioc.alerts.sender import SendRound, send_round
from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn
from ioc.events import ALERT_OUTBOX_CHANNEL, EVENTS_CHANNEL
from ioc.loops import LoopService
from ioc.settings import Settings

log = logging.getLogger("ioc.alerts.sender")

STATES = ("ok", "pending", "firing", "acknowledged", "resolved", "no_data", "closed")


class AlertEvaluator(LoopService):
    """Evaluates rules on KPI events (woken by NOTIFY) and on its tick."""

    name = "alerts.evaluator"
    leased = True
    batch = 1000

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=settings.alerts_eval_seconds)
        self.db = db
        self.settings = settings
        self._last_recompute = float("-inf")

    async def run_once(self) -> None:
        recompute = time.monotonic() - self._last_recompute >= self.settings.alerts_tick_seconds
        async with self.db.session() as session:
            result = await evaluate_round(
                session, datetime.now(UTC), recompute=recompute, batch=self.batch
            )
        if recompute:
            self._last_recompute = time.monotonic()
        if result.events >= self.batch:
            self.wake()  # a backlog: keep going without waiting for the next tick
        async with self.db.session() as session:
            counts = await state_counts(session)
        for state in STATES:
            metrics.ALERT_STATES.labels(state).set(counts.get(state, 0))


class AlertSender(LoopService):
    """Drains the notification outbox (woken by NOTIFY from the evaluator's commits)."""

    name = "alerts.sender"
    leased = True

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(dsn=asyncpg_dsn(db.url), loop_seconds=settings.alerts_send_seconds)
        self.db = db
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self.last_round: SendRound | None = None
        self.told_smtp_unset = False

    async def run_once(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        self.last_round = await send_round(self.db, self.settings, self._client, datetime.now(UTC))
        if self.last_round.smtp_unset and not self.told_smtp_unset:
            log.warning("alert e-mails are waiting: %s", SMTP_UNSET)  # once per process
            self.told_smtp_unset = True

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def build_services(ctx: AppContext) -> list[LoopService]:
    """The room's services, wired to the listener; both kept in `ctx.handles`."""
    if not ctx.settings.alerts_enabled:
        return []
    evaluator = AlertEvaluator(ctx.db, ctx.settings)
    sender = AlertSender(ctx.db, ctx.settings)
    ctx.listener.subscribe(EVENTS_CHANNEL, lambda _payload: evaluator.wake())
    ctx.listener.subscribe(ALERT_OUTBOX_CHANNEL, lambda _payload: sender.wake())
    ctx.handles.add(evaluator)
    ctx.handles.add(sender)

    async def readiness() -> dict[str, Any]:
        # Informational: a mail server being down must not take the API out of rotation.
        async with ctx.db.session() as session:
            return {"ok": True, **await outbox_health(session)}

    async def email_readiness() -> dict[str, Any]:
        # Never fatal: without a mail server the rest of ioc works; say what is missing.
        if ctx.settings.smtp_host:
            return {"ok": True, "smtp": f"{ctx.settings.smtp_host}:{ctx.settings.smtp_port}"}
        async with ctx.db.session() as session:
            rules = await count_email_rules(session)
        return {"ok": True, "smtp": None, "email_rules": rules, "warning": SMTP_UNSET}

    ctx.readiness["alerts"] = readiness
    ctx.readiness["email"] = email_readiness
    return [evaluator, sender]
