"""Feed delivery: one leader process, one worker task per active subscription.

Guarantees (docs/api.md §7):
- **Ordered, at-least-once per subscription.** A worker sends its events one at a time, in
  seq order, and moves the subscription's `cursor_seq` only past events answered with a
  2xx (recorded in small batches, so a crash re-sends a few events — with the same
  `webhook-id`). A failed event blocks the ones after it until it succeeds or the
  subscription turns `failing`.
- **Retries** with exponential backoff and jitter for `feeds_retry_for_seconds` (24 h by
  default) from the first failure, then `failing` plus an e-mail to the contact.
- **Isolation.** Each worker has its own HTTP connection and waits only on its own
  endpoint, so a slow or dead endpoint never delays another.
- **One process at a time.** The service is leased; workers stop as soon as the lease is
  lost and the next leader resumes from the cursors in PostgreSQL.

How events reach workers: the leader's *tail* reads the log once per NOTIFY and pushes each
new event to the workers that are caught up (their position equals the tail's), in memory.
A worker that is behind (new, recovering, replaying, or whose queue is full) reads its own
events from PostgreSQL until it reaches the tail again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from ioc import metrics
from ioc.errors import Invalid
from ioc.events import EVENTS_CHANNEL, FEEDS_CHANNEL, Listener
from ioc.feeds.http import NoResponse, WebhookConnection
from ioc.feeds.mail import send_failing_email
from ioc.feeds.models import DeliveryTarget
from ioc.feeds.service import check_url
from ioc.feeds.stream import (
    FeedEvent,
    body_of,
    fetch_events,
    load_target,
    log_head,
    matches,
    tail_events,
    webhook_id,
)
from ioc.loops import LoopService
from ioc.settings import Settings
from ioc.webhooks import signature_headers

log = logging.getLogger("ioc.feeds")

BATCH = 1000  # events read per query
MAX_QUEUE = 10_000  # events a caught-up worker may hold in memory; beyond, it reads the log
FLUSH_SECONDS = 0.5  # progress of every worker is written together this often
NOTE_EVERY = 200  # a worker hands its progress to the recorder at least every N events
RELOAD_SECONDS = 10.0  # re-read the subscription even without a NOTIFY ioc_feeds
IDLE_SECONDS = 5.0  # re-check the log this often even without a NOTIFY
# Label lookups cost more than the increment on the hot path: resolve them once.
_DELIVERED_OK = metrics.FEEDS_DELIVERIES.labels("ok")
_DELIVERED_ERROR = metrics.FEEDS_DELIVERIES.labels("error")


def backoff_seconds(attempt: int, base: float, ceiling: float) -> float:
    """Exponential backoff with ±25 % jitter (so endpoints recovering together are not hit
    by every retry at once): base, 2·base, 4·base … capped at `ceiling`."""
    delay = min(ceiling, base * 2.0 ** min(attempt - 1, 30))
    return delay * (0.75 + random.random() / 2)


@dataclass(slots=True)
class Attempt:
    seq: int
    webhook_id: str
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: float
    ok: bool


@dataclass
class _Worker:
    sub_id: uuid.UUID
    target: DeliveryTarget | None = None
    # Every matching event with seq <= pos is delivered or waiting in `queue`.
    pos: int = -1
    queue: deque[FeedEvent] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    control: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class DeliveryService(LoopService):
    """Leader-only: one worker per active subscription, the log tail, the log purge."""

    name = "feeds.delivery"
    leased = True

    def __init__(self, settings: Settings, dsn: str, listener: Listener | None = None) -> None:
        super().__init__(dsn=dsn, loop_seconds=settings.feeds_loop_seconds)
        self.settings = settings
        self.dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._workers: dict[uuid.UUID, _Worker] = {}
        self._tail_task: asyncio.Task[None] | None = None
        self._tail_wake = asyncio.Event()
        self._tail_head = -1
        self._last_purge = 0.0
        # Progress of all workers, written in one transaction every FLUSH_SECONDS: per
        # delivery a commit per subscription would make 100 subscriptions 100 commits.
        self._rows: list[tuple[uuid.UUID, Attempt]] = []
        self._cursors: dict[uuid.UUID, tuple[int, int, bool]] = {}  # id → epoch, seq, sent
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        if listener is not None:
            listener.subscribe(EVENTS_CHANNEL, lambda _payload: self._tail_wake.set())
            listener.subscribe(FEEDS_CHANNEL, self._on_change)

    def _on_change(self, payload: str | None) -> None:
        worker = None
        with contextlib.suppress(ValueError, TypeError):
            worker = self._workers.get(uuid.UUID(str(payload)))
        for w in [worker] if worker is not None else list(self._workers.values()):
            w.control.set()
            w.wake.set()
        self._tail_wake.set()
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
        if self._tail_task is None or self._tail_task.done():
            if self._tail_task is not None and not self._tail_task.cancelled():
                error = self._tail_task.exception()
                if error is not None:
                    log.error("feeds: log tail failed; restarting", exc_info=error)
            self._tail_head = await log_head(pool)
            self._tail_task = asyncio.create_task(self._tail(pool), name="ioc:feeds:tail")
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop(pool), name="ioc:feeds:flush")
        rows = await pool.fetch("SELECT id FROM feed_subscriptions WHERE status = 'active'")
        active = {r["id"] for r in rows}
        for sub_id, worker in list(self._workers.items()):
            if worker.task is not None and worker.task.done():
                del self._workers[sub_id]
                if not worker.task.cancelled() and worker.task.exception() is not None:
                    log.error("feeds: worker %s died", sub_id, exc_info=worker.task.exception())
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
            "DELETE FROM feed_deliveries WHERE at < now() - make_interval(secs => $1)",
            days * 86400,
        )
        # Upstream retries last ≥ 24 h: remember ids longer, so a late retry stays a duplicate.
        await pool.execute(
            "DELETE FROM federation_inbox WHERE received_at < now() - interval '7 days'"
        )

    async def stop(self) -> None:
        self._stopping = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        if self._tail_task is not None:
            tasks.append(self._tail_task)
        if self._flusher is not None:
            tasks.append(self._flusher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()
        if self._pool is not None:
            try:
                await self._flush(self._pool)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Not written: those events will be delivered again (same ids) by the next
                # leader — at-least-once holds, only the log loses these rows.
                log.warning("feeds: last progress not recorded: %s", exc)
        await super().stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # --- the tail: one read of the log for every caught-up worker
    async def _tail(self, pool: asyncpg.Pool) -> None:
        while self.running:
            self._tail_wake.clear()
            events = await tail_events(pool, self._tail_head, BATCH)
            if not events:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._tail_wake.wait(), timeout=IDLE_SECONDS)
                continue
            self._dispatch(events)

    def _dispatch(self, events: list[FeedEvent]) -> None:
        """Hand new events to caught-up workers (synchronous: no await between the checks)."""
        prev, head = self._tail_head, events[-1].seq
        for worker in self._workers.values():
            target = worker.target
            if target is None or not prev <= worker.pos <= head:
                worker.wake.set()  # behind (or not started): it reads the log itself
                continue
            mine = [e for e in events if e.seq > worker.pos and matches(target, e)]
            if len(worker.queue) + len(mine) > MAX_QUEUE:
                continue  # stays at its position: it will read the log once it drains
            worker.queue.extend(mine)
            worker.pos = head
            if mine:
                worker.wake.set()
        self._tail_head = head

    # --- one subscription
    async def _work(self, pool: asyncpg.Pool, worker: _Worker) -> None:
        reload_at = 0.0
        conn: WebhookConnection | None = None
        try:
            while self.running:
                worker.wake.clear()
                if worker.control.is_set() or time.monotonic() > reload_at:
                    if not await self._reload(pool, worker):
                        return
                    reload_at = time.monotonic() + RELOAD_SECONDS
                target = worker.target
                if target is None or target.status != "active":
                    return
                if conn is None or conn.url != target.url:
                    if conn is not None:
                        await conn.close()
                    conn = WebhookConnection(
                        target.url, timeout=self.settings.feeds_timeout_seconds
                    )
                if target.next_attempt_at is not None:
                    wait = (target.next_attempt_at - datetime.now(UTC)).total_seconds()
                    if wait > 0:
                        # Only a change (replay, PATCH) cuts a backoff short, not new events.
                        await _wait(worker.control, min(wait, RELOAD_SECONDS))
                        continue
                if not worker.queue:
                    if worker.pos < self._tail_head:
                        await self._read_log(pool, worker)
                    else:
                        await self._idle(pool, worker)
                    continue
                await self._deliver(pool, conn, worker)
        finally:
            if conn is not None:
                await conn.close()

    async def _reload(self, pool: asyncpg.Pool, worker: _Worker) -> bool:
        """Re-read the subscription; start over from its cursor if what it selects changed."""
        if worker.control.is_set() or worker.target is None:
            # Progress noted but not yet written would make the row's cursor look behind
            # (a resumed subscription would re-send what it already delivered).
            await self._flush(pool)
        worker.control.clear()
        fresh = await load_target(pool, worker.sub_id)
        if fresh is None or fresh.status != "active":
            return False
        try:
            await check_url(fresh.url, allow_private=self.settings.webhooks_allow_private)
        except Invalid as exc:
            await self._mark_failing(pool, fresh, f"target URL refused: {exc.detail}")
            return False
        old = worker.target
        if old is None or not old.same_selection(fresh) or fresh.cursor_seq > worker.pos:
            worker.queue.clear()
            worker.pos = fresh.cursor_seq
        elif old is not None:
            # Same selection: keep the queue; the worker's own view of its cursor and retry
            # clock is at least as new as the row's (it writes them).
            fresh.cursor_seq = max(fresh.cursor_seq, old.cursor_seq)
        worker.target = fresh
        return True

    async def _read_log(self, pool: asyncpg.Pool, worker: _Worker) -> None:
        """Behind the tail: read the next events from PostgreSQL up to the tail's head."""
        assert worker.target is not None
        bound, after = self._tail_head, worker.pos
        events, read_to = await fetch_events(pool, worker.target, after, bound, BATCH)
        if worker.pos != after:
            return  # reset meanwhile (replay): this read is stale
        worker.queue.extend(events)
        worker.pos = bound if read_to is None else read_to

    async def _idle(self, pool: asyncpg.Pool, worker: _Worker) -> None:
        """Caught up with nothing to send: note the skipped seqs, wait for news."""
        target = worker.target
        assert target is not None
        if worker.pos > target.cursor_seq and target.attempts == 0:
            self._note(target, [], worker.pos)
        await _wait(worker.wake, IDLE_SECONDS)

    async def _deliver(self, pool: asyncpg.Pool, conn: WebhookConnection, worker: _Worker) -> None:
        target = worker.target
        assert target is not None
        done: list[Attempt] = []
        first = True
        while worker.queue and self.running and not worker.control.is_set():
            event = worker.queue[0]
            attempt_no = target.attempts + 1 if first else 1
            first = False
            attempt = await self._post(conn, target, event, attempt_no)
            if not attempt.ok:
                # What went through first, then the failure: the log stays in order.
                self._note(target, done, max((a.seq for a in done), default=None))
                await self._flush(pool)
                await self._record_failure(pool, target, attempt)
                return
            worker.queue.popleft()
            done.append(attempt)
            target.attempts = 0
            if len(done) >= NOTE_EVERY:
                self._note(target, done, attempt.seq)
                done = []
        cursor = worker.pos if not worker.queue else max((a.seq for a in done), default=None)
        self._note(target, done, cursor)

    def _note(self, target: DeliveryTarget, attempts: list[Attempt], cursor: int | None) -> None:
        """Hand successful attempts and the new cursor to the recorder (written ≤ 0.5 s)."""
        self._rows.extend((target.id, a) for a in attempts)
        if cursor is None or (cursor <= target.cursor_seq and not attempts):
            return
        sent = bool(attempts)
        previous = self._cursors.get(target.id)
        if previous is not None and previous[0] == target.replay_epoch:
            cursor, sent = max(cursor, previous[1]), sent or previous[2]
        self._cursors[target.id] = (target.replay_epoch, cursor, sent)
        target.cursor_seq = max(target.cursor_seq, cursor)
        target.first_failure_at = target.next_attempt_at = None

    async def _flush_loop(self, pool: asyncpg.Pool) -> None:
        while self.running:
            await asyncio.sleep(FLUSH_SECONDS)
            await self._flush(pool)

    async def _flush(self, pool: asyncpg.Pool) -> None:
        """Write every worker's noted progress: delivery rows and cursors, one transaction."""
        async with self._flush_lock:
            rows, self._rows = self._rows, []
            cursors, self._cursors = self._cursors, {}
            if not rows and not cursors:
                return
            try:
                await self._write(pool, rows, cursors)
            except BaseException:
                self._rows[:0] = rows  # keep them for the next round
                for sub_id, value in cursors.items():
                    self._cursors.setdefault(sub_id, value)
                raise

    @staticmethod
    async def _write(
        pool: asyncpg.Pool,
        rows: list[tuple[uuid.UUID, Attempt]],
        cursors: dict[uuid.UUID, tuple[int, int, bool]],
    ) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if rows:
                # A subscription deleted since these attempts were noted takes its delivery
                # log with it: its rows are skipped (a foreign-key error would fail every
                # later flush). FOR KEY SHARE holds off a delete until this commits. A
                # separate statement, not a join in the INSERT: a join may reorder the rows,
                # and the log's order (its identity) is the order of the attempts.
                live = {
                    r["id"]
                    for r in await conn.fetch(
                        "SELECT id FROM feed_subscriptions WHERE id = ANY($1::uuid[]) "
                        "FOR KEY SHARE",
                        list({sub_id for sub_id, _ in rows}),
                    )
                }
                rows = [(sub_id, a) for sub_id, a in rows if sub_id in live]
            if rows:
                await conn.execute(
                    """
                    INSERT INTO feed_deliveries (subscription_id, seq, webhook_id, attempt,
                        status_code, error, latency_ms, ok)
                    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::int[],
                        $5::int[], $6::text[], $7::float8[], $8::bool[])
                    """,
                    [sub_id for sub_id, _ in rows],
                    [a.seq for _, a in rows],
                    [a.webhook_id for _, a in rows],
                    [a.attempt for _, a in rows],
                    [a.status_code for _, a in rows],
                    [a.error for _, a in rows],
                    [a.latency_ms for _, a in rows],
                    [a.ok for _, a in rows],
                )
            if cursors:
                # The epoch guard: a replay in between wins over a worker's progress.
                await conn.execute(
                    """
                    UPDATE feed_subscriptions s SET cursor_seq = greatest(s.cursor_seq, u.seq),
                        attempts = 0, first_failure_at = NULL, next_attempt_at = NULL,
                        last_success_at = CASE WHEN u.sent THEN now() ELSE s.last_success_at END,
                        last_error = CASE WHEN u.sent THEN NULL ELSE s.last_error END
                    FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bool[])
                        AS u(id, epoch, seq, sent)
                    WHERE s.id = u.id AND s.replay_epoch = u.epoch
                    """,
                    list(cursors),
                    [v[0] for v in cursors.values()],
                    [v[1] for v in cursors.values()],
                    [v[2] for v in cursors.values()],
                )

    async def _post(
        self, conn: WebhookConnection, target: DeliveryTarget, event: FeedEvent, attempt: int
    ) -> Attempt:
        msg_id = webhook_id(target.id, event.seq, target.replay_epoch)
        body = body_of(event)
        headers = signature_headers(target.secrets(datetime.now(UTC)), msg_id, body)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            status = await conn.post(body, headers)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = f"timeout after {self.settings.feeds_timeout_seconds:g} s"
        except NoResponse as exc:
            error = str(exc)[:300] or "connection failed"
        latency = (time.perf_counter() - started) * 1000
        ok = error is None
        (_DELIVERED_OK if ok else _DELIVERED_ERROR).inc()
        metrics.FEEDS_DELIVERY_LATENCY.observe(latency / 1000)
        return Attempt(event.seq, msg_id, attempt, status, error, latency, ok)

    async def _record_failure(
        self, pool: asyncpg.Pool, target: DeliveryTarget, failure: Attempt
    ) -> None:
        """Write the failed attempt and the retry clock; `failing` once retries are spent."""
        delay = backoff_seconds(
            failure.attempt,
            self.settings.feeds_retry_base_seconds,
            self.settings.feeds_retry_max_seconds,
        )
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO feed_deliveries (subscription_id, seq, webhook_id, attempt,
                    status_code, error, latency_ms, ok)
                SELECT id, $2, $3, $4, $5, $6, $7, false FROM feed_subscriptions
                WHERE id = $1 FOR KEY SHARE
                """,
                target.id,
                failure.seq,
                failure.webhook_id,
                failure.attempt,
                failure.status_code,
                failure.error,
                failure.latency_ms,
            )
            row = await conn.fetchrow(
                """
                UPDATE feed_subscriptions SET attempts = $3,
                    first_failure_at = coalesce(first_failure_at, now()),
                    next_attempt_at = now() + make_interval(secs => $4),
                    last_error = $5
                WHERE id = $1 AND replay_epoch = $2
                RETURNING first_failure_at, next_attempt_at,
                    now() - first_failure_at >= make_interval(secs => $6) AS exhausted
                """,
                target.id,
                target.replay_epoch,
                failure.attempt,
                delay,
                failure.error,
                self.settings.feeds_retry_for_seconds,
            )
        target.attempts = failure.attempt
        if row is None:  # replayed meanwhile: the reload starts over from the new position
            target.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
            return
        target.first_failure_at = row["first_failure_at"]
        target.next_attempt_at = row["next_attempt_at"]
        if row["exhausted"]:
            reason = (
                f"event seq {failure.seq} not delivered since "
                f"{target.first_failure_at.isoformat() if target.first_failure_at else '?'} "
                f"({failure.attempt} attempts); last: {failure.error}"
            )
            await self._mark_failing(pool, target, reason)
            target.status = "failing"

    async def _mark_failing(self, pool: asyncpg.Pool, target: DeliveryTarget, reason: str) -> None:
        """E-mail the contact, then `failing` with the reason (and whether the mail went).

        The status changes last, so nothing stops the worker before the e-mail is out."""
        metrics.FEEDS_FAILING.inc()
        log.warning("feeds: subscription %s is failing: %s", target.id, reason)
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


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=timeout)
