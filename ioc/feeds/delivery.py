"""Feed delivery: one leader process, one worker task per active subscription.

Guarantees (CONTRACT §7):
- **Ordered, at-least-once per subscription.** A worker sends the events after its
  subscription's `cursor_seq` one at a time, in seq order, and moves the cursor only past
  events answered with a 2xx (in batches, so a crash re-sends a few events — with the same
  `webhook-id`). A failed event blocks the ones after it until it succeeds or the
  subscription turns `failing`.
- **Retries** with exponential backoff and jitter for `feeds_retry_for_seconds` (24 h by
  default) from the first failure, then `failing` plus an e-mail to the contact.
- **Isolation.** Each worker has its own HTTP client and waits only on its own endpoint, so
  a slow or dead endpoint never delays another.
- **One process at a time.** The service is leased; workers stop as soon as the lease is
  lost and the next leader resumes from the cursors in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx

from ioc import metrics
from ioc.errors import Invalid
from ioc.events import EVENTS_CHANNEL
from ioc.events.listener import Listener
from ioc.feeds.models import DeliveryTarget
from ioc.feeds.notify import send_failing_email
from ioc.feeds.service import FEEDS_CHANNEL, check_url
from ioc.services import LoopService
from ioc.settings import Settings
from ioc.webhooks import signature_headers

log = logging.getLogger("ioc.feeds")

BATCH = 500  # events read per query
FLUSH_EVERY = 200  # successful deliveries recorded per transaction at most
FLUSH_SECONDS = 0.25  # … or this often, so the cursor (and the log) stay near real time
IDLE_SECONDS = 30.0  # re-check the log this often even without a NOTIFY


def webhook_id(sub_id: uuid.UUID, seq: int, epoch: int) -> str:
    """Stable per (subscription, event, replay epoch): retries reuse it, a replay does not."""
    base = f"msg_{sub_id.hex}_{seq}"
    return base if epoch == 0 else f"{base}_r{epoch}"


def backoff_seconds(attempt: int, base: float, ceiling: float) -> float:
    """Exponential backoff with ±25 % jitter (so endpoints recovering together are not hit
    by every retry at once): base, 2·base, 4·base … capped at `ceiling`."""
    delay = min(ceiling, base * 2.0 ** min(attempt - 1, 30))
    return delay * (0.75 + random.random() / 2)


@dataclass(slots=True)
class FeedEvent:
    seq: int
    type: str
    unit_code: str | None
    payload: str  # jsonb as text: embedded verbatim in the body, never re-parsed


@dataclass(slots=True)
class Attempt:
    seq: int
    webhook_id: str
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: float
    ok: bool


_TARGET_SQL = """
    SELECT id, unit_code, url, topics, kpi_ids, severities, contact_email, status, cursor_seq,
        replay_epoch, attempts, first_failure_at, next_attempt_at, secret,
        CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous
    FROM feed_subscriptions WHERE id = $1
"""

# The events of one subscription after its cursor, up to `head` (read first: seq order is
# commit order, so every event up to head is visible when the second query runs).
_EVENTS_SQL = """
    SELECT e.seq, e.type, e.unit_code, e.payload::text AS payload
    FROM events e
    WHERE e.seq > $1 AND e.seq <= $2 AND e.type = ANY($3::text[])
      AND (e.unit_code IN (SELECT descendant_code FROM unit_closure WHERE ancestor_code = $4)
           OR (e.type = 'document' AND e.payload->'units' ?| ARRAY(
                SELECT descendant_code FROM unit_closure WHERE ancestor_code = $4)))
      AND ($5::text[] IS NULL OR e.type <> 'kpi' OR e.subject = ANY($5::text[]))
      AND ($6::text[] IS NULL OR e.type <> 'alert'
           OR e.payload->'alert'->>'severity' = ANY($6::text[]))
    ORDER BY e.seq LIMIT $7
"""


async def load_target(
    conn: asyncpg.Pool | asyncpg.Connection, sub_id: uuid.UUID
) -> DeliveryTarget | None:
    row = await conn.fetchrow(_TARGET_SQL, sub_id)
    if row is None:
        return None
    secrets = [row["secret"]] + ([row["previous"]] if row["previous"] else [])
    return DeliveryTarget(
        id=row["id"],
        unit_code=row["unit_code"],
        url=row["url"],
        topics=list(row["topics"]),
        kpi_ids=row["kpi_ids"],
        severities=row["severities"],
        contact_email=row["contact_email"],
        secrets=secrets,
        status=row["status"],
        cursor_seq=row["cursor_seq"],
        replay_epoch=row["replay_epoch"],
        attempts=row["attempts"],
        first_failure_at=row["first_failure_at"],
        next_attempt_at=row["next_attempt_at"],
    )


async def fetch_events(
    pool: asyncpg.Pool, target: DeliveryTarget, limit: int = BATCH
) -> tuple[list[FeedEvent], int]:
    """Matching events after the cursor (at most `limit`) and the log's head when read."""
    async with pool.acquire() as conn:
        head = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events"))
        if head <= target.cursor_seq:
            return [], head
        rows = await conn.fetch(
            _EVENTS_SQL,
            target.cursor_seq,
            head,
            target.topics,
            target.unit_code,
            target.kpi_ids,
            target.severities,
            limit,
        )
    return [FeedEvent(r["seq"], r["type"], r["unit_code"], r["payload"]) for r in rows], head


def body_of(event: FeedEvent) -> bytes:
    """`{"type", "seq", "unit", "data"}` (CONTRACT §7), the payload embedded as stored."""
    head = json.dumps(
        {"type": event.type, "seq": event.seq, "unit": event.unit_code}, ensure_ascii=False
    )
    return (head[:-1] + ', "data": ' + event.payload + "}").encode()


@dataclass
class _Worker:
    sub_id: uuid.UUID
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    control: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class DeliveryService(LoopService):
    """Leader-only: keeps one worker per active subscription and purges the delivery log."""

    name = "feeds.delivery"
    leased = True

    def __init__(self, settings: Settings, dsn: str, listener: Listener | None = None) -> None:
        super().__init__(dsn=dsn, loop_seconds=settings.feeds_loop_seconds)
        self.settings = settings
        self.dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._workers: dict[uuid.UUID, _Worker] = {}
        self._last_purge = 0.0
        if listener is not None:
            listener.subscribe(EVENTS_CHANNEL, self._on_event)
            listener.subscribe(FEEDS_CHANNEL, self._on_change)

    # --- listener callbacks (quick: set events only)
    def _on_event(self, _payload: str | None) -> None:
        for worker in self._workers.values():
            worker.wake.set()

    def _on_change(self, payload: str | None) -> None:
        worker = None
        with contextlib.suppress(ValueError, TypeError):
            worker = self._workers.get(uuid.UUID(str(payload)))
        targets = [worker] if worker is not None else list(self._workers.values())
        for w in targets:
            w.control.set()
            w.wake.set()
        self.wake()

    @property
    def running(self) -> bool:
        return not self._stopping and self.is_leader

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.settings.feeds_db_pool_size
            )
        return self._pool

    async def run_once(self) -> None:
        pool = await self._ensure_pool()
        active = {
            r["id"]
            for r in await pool.fetch("SELECT id FROM feed_subscriptions WHERE status = 'active'")
        }
        for sub_id, worker in list(self._workers.items()):
            if worker.task is not None and worker.task.done():
                del self._workers[sub_id]
                if not worker.task.cancelled() and worker.task.exception() is not None:
                    log.error("feeds: worker %s died", sub_id, exc_info=worker.task.exception())
            elif sub_id not in active and worker.task is not None:
                worker.task.cancel()
        for sub_id in active - self._workers.keys():
            worker = _Worker(sub_id)
            worker.task = asyncio.create_task(self._work(pool, worker), name=f"ioc:feed:{sub_id}")
            self._workers[sub_id] = worker
        metrics.FEEDS_WORKERS.set(len(self._workers))
        if time.monotonic() - self._last_purge > 3600:
            await self._purge(pool)
            self._last_purge = time.monotonic()

    async def _purge(self, pool: asyncpg.Pool) -> None:
        days = self.settings.feeds_delivery_log_days
        await pool.execute(
            "DELETE FROM feed_deliveries WHERE at < now() - make_interval(days => $1)", int(days)
        )
        # Upstream retries last ≥ 24 h: remember ids longer, so a late retry stays a duplicate.
        await pool.execute(
            "DELETE FROM federation_inbox WHERE received_at < now() - interval '7 days'"
        )

    async def stop(self) -> None:
        self._stopping = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        await super().stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # --- one subscription
    async def _work(self, pool: asyncpg.Pool, worker: _Worker) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        timeout = httpx.Timeout(self.settings.feeds_timeout_seconds)
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, follow_redirects=False
        ) as client:
            while self.running:
                worker.wake.clear()
                worker.control.clear()
                target = await load_target(pool, worker.sub_id)
                if target is None or target.status != "active":
                    return
                if target.next_attempt_at is not None:
                    wait = target.next_attempt_at.timestamp() - time.time()
                    if wait > 0:
                        # Only a change (replay, PATCH) cuts a backoff short, not new events.
                        await _wait(worker.control, min(wait, IDLE_SECONDS))
                        continue
                try:
                    await check_url(target.url, allow_private=self.settings.webhooks_allow_private)
                except Invalid as exc:
                    await self._mark_failing(pool, target, f"target URL refused: {exc.detail}")
                    return
                events, head = await fetch_events(pool, target)
                if not events:
                    if head > target.cursor_seq:
                        await _advance(pool, target, head)
                    await _wait(worker.wake, IDLE_SECONDS)
                    continue
                await self._deliver(pool, client, worker, target, events, head)

    async def _deliver(
        self,
        pool: asyncpg.Pool,
        client: httpx.AsyncClient,
        worker: _Worker,
        target: DeliveryTarget,
        events: list[FeedEvent],
        head: int,
    ) -> None:
        done: list[Attempt] = []
        last_flush = time.monotonic()
        for index, event in enumerate(events):
            if not self.running or worker.control.is_set():
                break
            attempt_no = target.attempts + 1 if index == 0 else 1
            attempt = await self._post(client, target, event, attempt_no)
            done.append(attempt)
            if not attempt.ok:
                await self._record(pool, target, done, failure=attempt)
                return
            if len(done) >= FLUSH_EVERY or time.monotonic() - last_flush > FLUSH_SECONDS:
                await self._record(pool, target, done)
                done, last_flush = [], time.monotonic()
        else:
            # Every matching event up to head went through: skip the rest of the log too.
            if len(events) < BATCH:
                await self._record(pool, target, done, skip_to=head)
                return
        await self._record(pool, target, done)

    async def _post(
        self, client: httpx.AsyncClient, target: DeliveryTarget, event: FeedEvent, attempt: int
    ) -> Attempt:
        msg_id = webhook_id(target.id, event.seq, target.replay_epoch)
        body = body_of(event)
        headers = signature_headers(target.secrets, msg_id, body)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            # Stream so a huge response body is never read into memory.
            async with client.stream("POST", target.url, content=body, headers=headers) as resp:
                status = resp.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
        except httpx.TimeoutException:
            error = f"timeout after {self.settings.feeds_timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        latency = (time.perf_counter() - started) * 1000
        ok = error is None
        metrics.FEEDS_DELIVERIES.labels("ok" if ok else "error").inc()
        metrics.FEEDS_DELIVERY_LATENCY.observe(latency / 1000)
        return Attempt(event.seq, msg_id, attempt, status, error, latency, ok)

    async def _record(
        self,
        pool: asyncpg.Pool,
        target: DeliveryTarget,
        attempts: list[Attempt],
        *,
        failure: Attempt | None = None,
        skip_to: int | None = None,
    ) -> None:
        """Write the attempts and move the cursor (or the retry clock) in one transaction."""
        oks = [a.seq for a in attempts if a.ok]
        new_cursor = max(oks + ([skip_to] if skip_to is not None else []), default=None)
        failing_reason: str | None = None
        async with pool.acquire() as conn, conn.transaction():
            if attempts:
                await conn.execute(
                    """
                    INSERT INTO feed_deliveries (subscription_id, seq, webhook_id, attempt,
                        status_code, error, latency_ms, ok)
                    SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::int[], $5::int[],
                        $6::text[], $7::float8[], $8::bool[])
                    """,
                    target.id,
                    [a.seq for a in attempts],
                    [a.webhook_id for a in attempts],
                    [a.attempt for a in attempts],
                    [a.status_code for a in attempts],
                    [a.error for a in attempts],
                    [a.latency_ms for a in attempts],
                    [a.ok for a in attempts],
                )
            if new_cursor is not None:
                # The epoch guard: a replay in between wins over this worker's progress.
                await conn.execute(
                    """
                    UPDATE feed_subscriptions SET cursor_seq = greatest(cursor_seq, $3),
                        attempts = 0, first_failure_at = NULL, next_attempt_at = NULL,
                        last_success_at = CASE WHEN $4 THEN now() ELSE last_success_at END,
                        last_error = CASE WHEN $4 THEN NULL ELSE last_error END
                    WHERE id = $1 AND replay_epoch = $2
                    """,
                    target.id,
                    target.replay_epoch,
                    new_cursor,
                    bool(oks),
                )
            if failure is not None:
                delay = backoff_seconds(
                    failure.attempt,
                    self.settings.feeds_retry_base_seconds,
                    self.settings.feeds_retry_max_seconds,
                )
                row = await conn.fetchrow(
                    """
                    UPDATE feed_subscriptions SET attempts = $3,
                        first_failure_at = coalesce(first_failure_at, now()),
                        next_attempt_at = now() + make_interval(secs => $4),
                        last_error = $5,
                        status = CASE WHEN now() - coalesce(first_failure_at, now())
                            >= make_interval(secs => $6) THEN 'failing' ELSE status END
                    WHERE id = $1 AND replay_epoch = $2
                    RETURNING status, first_failure_at
                    """,
                    target.id,
                    target.replay_epoch,
                    failure.attempt,
                    delay,
                    failure.error,
                    self.settings.feeds_retry_for_seconds,
                )
                if row is not None and row["status"] == "failing":
                    failing_reason = (
                        f"event seq {failure.seq} not delivered since "
                        f"{row['first_failure_at'].isoformat()} ({failure.attempt} attempts); "
                        f"last: {failure.error}"
                    )
        if failing_reason is not None:
            await self._mark_failing(pool, target, failing_reason)

    async def _mark_failing(self, pool: asyncpg.Pool, target: DeliveryTarget, reason: str) -> None:
        """`failing` with the reason; the contact is e-mailed and told so in the reason."""
        metrics.FEEDS_FAILING.inc()
        log.warning("feeds: subscription %s is failing: %s", target.id, reason)
        note = None
        if target.contact_email:
            note = await send_failing_email(
                self.settings,
                to=target.contact_email,
                sub_id=str(target.id),
                url=target.url,
                reason=reason,
            )
            note = note or f"e-mailed {target.contact_email}"
        else:
            note = "no contact e-mail to notify"
        await pool.execute(
            """
            UPDATE feed_subscriptions SET status = 'failing', status_reason = $2,
                status_changed_at = now(), next_attempt_at = NULL
            WHERE id = $1
            """,
            target.id,
            f"{reason} — {note}",
        )


async def _advance(pool: asyncpg.Pool, target: DeliveryTarget, head: int) -> None:
    """Nothing matched up to head: move the cursor so the next scan starts there."""
    await pool.execute(
        "UPDATE feed_subscriptions SET cursor_seq = greatest(cursor_seq, $3) "
        "WHERE id = $1 AND replay_epoch = $2 AND attempts = 0",
        target.id,
        target.replay_epoch,
        head,
    )


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=timeout)
