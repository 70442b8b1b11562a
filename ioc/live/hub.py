"""The per-process fan-out hub: one reader of the event log, many screens.

How an event reaches a screen:
1. A writer commits events; PostgreSQL delivers `NOTIFY ioc_events '<max seq>'` to every
   process's listener (ids only, never payloads: the 8,000-byte limit does not apply).
2. The hub's tail (`LiveTail`, one per process) reads `seq > cursor` from the `events` table
   and dispatches each kpi/alert event to the *topics* interested in its unit — a topic is
   one (unit, windows) subscription shared by every screen that asked for it, so routing
   costs per event do not grow with the number of screens.
3. Each screen (`ScreenConnection`) has a bounded queue; its writer task drains it.

Resumes (`since`) are answered from the hub's memory of the last `_RECENT_EVENTS` events
when it covers them (a reconnect storm of every screen costs no query), else from the log.

Subscribe-first-then-backfill: a screen is attached to its topic *before* its snapshot or
replay is taken, and that snapshot/replay is bounded by the hub's cursor read synchronously
at the same moment. Events up to the cursor are in the snapshot/replay, events after it
reach the queue: nothing falls in the gap, nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import text

from ioc import metrics
from ioc.auth import Principal
from ioc.db import Database
from ioc.events import Event, last_seq, oldest_seq, read_runs_since, read_since
from ioc.live.protocol import LIVE_EVENT_TYPES, Wire, dumps, event_message
from ioc.live.snapshot import build_snapshot
from ioc.settings import Settings
from ioc.units import children, subtree_set

if TYPE_CHECKING:
    from ioc.live.connection import ScreenConnection

log = logging.getLogger("ioc.live")

TopicKey = tuple[str, tuple[str, ...]]
SnapshotBuilder = Callable[[Any, str, list[str]], Awaitable[dict[str, Any]]]
# Stored runs per tail read (`read_runs_since`): a run holds one unit's events, so one
# read covers a province-wide round (~123 runs); at most 500 events a run.
_READ_ROWS = 128
_STATUS_KEY = ("status",)
_UNIT_CACHE_SECONDS = 300.0
_SNAPSHOT_CACHE_SECONDS = 60.0
_PRINCIPAL_CACHE_SECONDS = 5.0
# kpi/alert events kept in memory for resumes: at 10 events/s, the last ~7 minutes
_RECENT_EVENTS = 4096


@dataclass(eq=False)
class Topic:
    """One (unit, windows) subscription and the screens that share it."""

    unit: str
    windows: tuple[str, ...]
    kpi_units: frozenset[str]  # the unit and its direct children: what the screen shows
    alert_units: frozenset[str]  # the whole subtree: alerts anywhere under the unit
    conns: set[ScreenConnection] = field(default_factory=set)
    # seq of the last event routed to this topic: a cached snapshot taken at seq S is still
    # exact for a later subscriber while no event for this topic came after S.
    last_match: int = 0
    cached: tuple[int, float, asyncio.Future[str]] | None = None

    @property
    def key(self) -> TopicKey:
        return (self.unit, self.windows)

    def wants(self, event: Event) -> bool:
        if event.type == "kpi":
            return event.unit_code in self.kpi_units and event.time_window in self.windows
        if event.type == "scorecard":  # the current month's, whatever windows it shows
            return event.unit_code in self.kpi_units
        return event.type == "alert" and event.unit_code in self.alert_units


@dataclass(slots=True)
class _Recent:
    """A dispatched event, and its message once built (shared by every resume)."""

    event: Event
    wire: Wire | None = None


@dataclass
class _UnitScope:
    subtree: frozenset[str]
    children: frozenset[str]
    loaded: float


class Hub:
    """Routes kpi/alert/scorecard events from the log to the screens of this process."""

    def __init__(
        self, db: Database, settings: Settings, *, snapshot_builder: SnapshotBuilder | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.cursor = 0  # highest seq dispatched (or known to carry nothing for screens)
        self.ready = asyncio.Event()
        self.connections: set[ScreenConnection] = set()
        self._topics: dict[TopicKey, Topic] = {}
        self._kpi_index: dict[str, set[Topic]] = {}
        self._alert_index: dict[str, set[Topic]] = {}
        self._units: dict[str, _UnitScope] = {}
        # every kpi/alert event with recent_floor < seq <= cursor, in seq order
        self._recent: deque[_Recent] = deque()
        self._recent_floor = 0
        self._pending = True
        self._notified = 0
        self._tail: asyncpg.Connection | None = None
        self._principals: dict[bytes, tuple[float, Principal]] = {}
        self._wake: Callable[[], None] = lambda: None
        self._build = snapshot_builder or build_snapshot
        self._sent = {
            t: metrics.LIVE_MESSAGES_SENT.labels(t) for t in ("kpi", "alert", "scorecard")
        }
        # Since when the event log cannot be read (database unreachable): screens are told,
        # because their socket to this server stays open and its pings would say "live".
        self.database_down_since: datetime | None = None

    # --- the tail: LISTEN wake-ups → read the log → dispatch

    def on_notify(self, payload: str | None) -> None:
        """Listener callback: a commit announced `payload` = its max seq (None = catch up)."""
        if payload is not None and payload.isdigit():
            self._notified = max(self._notified, int(payload))
        self._pending = True
        self._wake()

    def set_waker(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def catch_up(self) -> None:
        """Read and dispatch every committed event after the cursor (called by `LiveTail`)."""
        if not self.ready.is_set():
            async with self.db.sessionmaker() as session:
                self.cursor = await last_seq(session)
            self._recent_floor = self.cursor
            self.ready.set()
            log.info("live hub started at seq %d", self.cursor)
        self._pending = True  # also a periodic poll, in case a notification was lost
        while self._pending:
            self._pending = False
            while True:
                # Every seq up to a notified value is committed (NOTIFY is sent at commit and
                # seq order is commit order), so the cursor may skip past record events.
                notified = self._notified
                rows, events = await self._read_after(self.cursor)
                self.dispatch(events)
                if rows < _READ_ROWS:
                    self.cursor = max(self.cursor, notified)
                    break

    async def _read_after(self, cursor: int) -> tuple[int, list[Event]]:
        """The next kpi/alert events after `cursor` (and how many stored rows held them), on
        the tail's own connection: one round trip (no pool checkout, no BEGIN/ROLLBACK) keeps
        commit-to-screen latency low. Whole stored rows are read and unpacked here (orjson),
        several times cheaper than one row per event for a round's thousands of events."""
        if self._tail is None or self._tail.is_closed():
            self._tail = await self.db.connect_raw()
        try:
            return await read_runs_since(
                self._tail, cursor, types=LIVE_EVENT_TYPES, runs=_READ_ROWS
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            tail, self._tail = self._tail, None
            with contextlib.suppress(Exception):
                await tail.close(timeout=2)
            raise

    async def close(self) -> None:
        tail, self._tail = self._tail, None
        if tail is not None:
            with contextlib.suppress(Exception):
                await tail.close(timeout=2)

    def dispatch(self, events: list[Event]) -> None:
        """Offer each event to the screens whose topic wants it; advances the cursor.

        Synchronous on purpose: a screen attaching between two awaits sees a cursor that
        matches exactly what has been offered."""
        now = datetime.now(UTC)
        coalesce = self.settings.ws_coalesce_kpis
        recent = self._recent
        for event in events:
            self.cursor = max(self.cursor, event.seq)
            entry = _Recent(event)
            recent.append(entry)
            if len(recent) > _RECENT_EVENTS:
                self._recent_floor = recent.popleft().event.seq
            metrics.LIVE_EVENTS_READ.inc()
            metrics.LIVE_FANOUT_DELAY.observe(max(0.0, (now - event.created_at).total_seconds()))
            index = self._alert_index if event.type == "alert" else self._kpi_index
            topics = index.get(event.unit_code or "")
            if not topics:
                continue
            message: tuple[Any, Wire] | None = None
            written = 0
            for topic in tuple(topics):
                if not topic.wants(event):
                    continue
                topic.last_match = event.seq
                if message is None:
                    message = event_message(event, coalesce=coalesce)
                    if message is None:
                        break
                key, wire = message
                entry.wire = wire
                # copies: an overflow may close a screen, which may drop its topic
                for conn in tuple(topic.conns):
                    written += conn.offer(key, wire)
            if written:  # written at once (the others are queued and counted by their writer)
                self._sent[event.type].inc(written)

    # --- handshakes

    async def principal(
        self, token: str, resolve: Callable[[Any, str], Awaitable[Principal]]
    ) -> Principal:
        """The token's principal, cached for a few seconds per process.

        A reconnect storm of thousands of screens sharing a token costs one query, not
        thousands. A token revoked meanwhile may still open a socket for up to
        `_PRINCIPAL_CACHE_SECONDS`; the periodic re-check closes it."""
        key = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        now = time.monotonic()
        cached = self._principals.get(key)
        if cached is not None and now - cached[0] < _PRINCIPAL_CACHE_SECONDS:
            return cached[1]
        async with self.db.sessionmaker() as session:
            principal = await resolve(session, token)  # raises Unauthorized: not cached
        if len(self._principals) >= 10_000:
            self._principals.clear()
        self._principals[key] = (now, principal)
        return principal

    # --- topics

    async def unit_scope(self, code: str) -> _UnitScope:
        """Subtree and direct children of a unit, cached (the tree changes only on loads)."""
        cached = self._units.get(code)
        if cached is not None and time.monotonic() - cached.loaded < _UNIT_CACHE_SECONDS:
            return cached
        async with self.db.sessionmaker() as session:
            below = await subtree_set(session, code)
            kids = frozenset(unit.code for unit in await children(session, code))
        scope = _UnitScope(below, kids, time.monotonic())
        self._units[code] = scope
        return scope

    async def topic_for(self, unit: str, windows: list[str]) -> Topic:
        """The topic of (unit, windows), created on first use. The unit must exist."""
        key: TopicKey = (unit, tuple(sorted(set(windows))))
        topic = self._topics.get(key)
        if topic is not None:
            return topic
        scope = await self.unit_scope(unit)
        topic = self._topics.get(key)  # another screen may have created it meanwhile
        if topic is None:
            topic = Topic(
                unit=unit,
                windows=key[1],
                kpi_units=frozenset({unit} | scope.children),
                alert_units=scope.subtree,
            )
            self._register(topic)
        return topic

    def _register(self, topic: Topic) -> None:
        self._topics[topic.key] = topic
        for code in topic.kpi_units:
            self._kpi_index.setdefault(code, set()).add(topic)
        for code in topic.alert_units:
            self._alert_index.setdefault(code, set()).add(topic)

    def attach(self, conn: ScreenConnection, topic: Topic) -> None:
        current = self._topics.get(topic.key)
        if current is None:  # dropped (emptied) while the subscriber was loading its scope
            self._register(topic)
        elif current is not topic:
            topic = current
        if conn.topic is not topic:
            self.detach(conn)
        conn.topic = topic
        topic.conns.add(conn)

    def detach(self, conn: ScreenConnection) -> None:
        topic, conn.topic = conn.topic, None
        if topic is None:
            return
        topic.conns.discard(conn)
        if not topic.conns and self._topics.get(topic.key) is topic:
            del self._topics[topic.key]
            for index, codes in (
                (self._kpi_index, topic.kpi_units),
                (self._alert_index, topic.alert_units),
            ):
                for code in codes:
                    topics = index.get(code)
                    if topics is not None:
                        topics.discard(topic)
                        if not topics:
                            del index[code]

    # --- snapshots and replays

    async def snapshot(self, topic: Topic, seq: int) -> str:
        """The snapshot message of `topic` valid at `seq`.

        One build serves every screen of the topic until an event for it arrives (or a
        minute passes): a reconnect storm of 10,000 screens costs a handful of queries."""
        cached = topic.cached
        now = time.monotonic()
        if (
            cached is None
            or topic.last_match > cached[0]
            or now - cached[1] > _SNAPSHOT_CACHE_SECONDS
        ):
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            topic.cached = cached = (seq, now, future)
            try:
                async with self.db.sessionmaker() as session:
                    body = await self._build(session, topic.unit, list(topic.windows))
                body.pop("seq", None)
                future.set_result(dumps(body))
            except BaseException as exc:
                # a failed build is not cached: the next screen tries again
                topic.cached = None
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
                    future.exception()  # marked retrieved: waiters re-raise it
                raise
        body_text = await asyncio.shield(cached[2])
        # splice the screen's own seq in without serialising the (large) body again
        rest = body_text[1:].removeprefix('"type":"snapshot",')
        return f'{{"type":"snapshot","seq":{seq},{rest}'

    async def replay(self, topic: Topic, since: int, upto: int) -> list[Wire] | None:
        """Messages of the events of `topic` in (since, upto], or None when they cannot all be
        replayed (purged by retention, too many, or `since` from another database)."""
        if since > upto:
            return None
        if since == upto:
            return []
        if since >= self._recent_floor and upto <= self.cursor:
            return self._replay_recent(topic, since, upto)
        units = sorted(topic.kpi_units | topic.alert_units)
        limit = self.settings.ws_max_replay
        async with self.db.sessionmaker() as session, session.begin():
            # One snapshot of the table for both statements: a purge cannot slip between them.
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            oldest = await oldest_seq(session)
            if oldest == 0 or oldest > since + 1:
                return None
            events = await read_since(
                session, since, upto=upto, types=LIVE_EVENT_TYPES, units=units, limit=limit + 1
            )
        if len(events) > limit:
            return None
        messages = []
        for event in events:
            if topic.wants(event):
                message = event_message(event, coalesce=False)
                if message is not None:
                    messages.append(message[1])
        return messages

    def _replay_recent(self, topic: Topic, since: int, upto: int) -> list[Wire] | None:
        """`replay` from memory: every kpi/alert event after `_recent_floor` is there."""
        matched: list[_Recent] = []
        for entry in reversed(self._recent):
            seq = entry.event.seq
            if seq <= since:
                break
            if seq <= upto and topic.wants(entry.event):
                matched.append(entry)
        if len(matched) > self.settings.ws_max_replay:
            return None
        messages = []
        for entry in reversed(matched):
            if entry.wire is None:
                message = event_message(entry.event, coalesce=False)
                if message is None:
                    continue
                entry.wire = message[1]
            messages.append(entry.wire)
        return messages

    # --- the database's state, as screens need to know it

    def status_message(self) -> Wire:
        """`{"type": "status", "database": "down"|"up", ...}` for the current state."""
        body: dict[str, object] = {"type": "status", "seq": self.cursor}
        if self.database_down_since is None:
            body["database"] = "up"
        else:
            body |= {
                "database": "down",
                "since": self.database_down_since.isoformat(),
                "detail": "the server cannot read its database: the figures shown are not current",
            }
        return Wire(dumps(body))

    def database_state(self, *, ok: bool, detail: str = "") -> None:
        """Record whether the log could be read; on a change, tell every screen."""
        if ok == (self.database_down_since is None):
            return
        if ok:
            log.info("live hub: the database is back; screens told")
            self.database_down_since = None
        else:
            log.warning("live hub: the database cannot be read (%s); screens told", detail)
            self.database_down_since = datetime.now(UTC)
        wire = self.status_message()
        for conn in list(self.connections):
            conn.offer(_STATUS_KEY, wire)

    # --- housekeeping (called by `LiveTicker`)

    def tick(self) -> None:
        """Pings idle screens, cuts off stuck or silent ones, ends expired tokens."""
        now = time.monotonic()
        wall = datetime.now(UTC)
        s = self.settings
        for conn in list(self.connections):
            stuck = conn.sending_since is not None and now - conn.sending_since
            if stuck and stuck > s.ws_send_timeout_seconds:
                conn.abort(
                    f"not reading: nothing could be written for {s.ws_send_timeout_seconds:g} s",
                    "stuck",
                )
            elif now - conn.last_rx > s.ws_idle_timeout_seconds:
                conn.kill(
                    1008,
                    f"idle: nothing received for {s.ws_idle_timeout_seconds:g} s; send "
                    '{"type": "ping"} regularly',
                    "idle",
                )
            elif conn.principal.expires_at is not None and conn.principal.expires_at <= wall:
                conn.kill(1008, "the token has expired", "token")
            elif now - conn.last_tx >= s.ws_ping_seconds:
                if self.database_down_since is not None:
                    conn.offer(_STATUS_KEY, self.status_message())  # instead of a ping
                else:
                    conn.ping(self.cursor)

    async def recheck_tokens(self) -> None:
        """Close the screens whose token was revoked or expired since they connected."""
        ids = {c.principal.token_id for c in self.connections}
        if not ids:
            return
        async with self.db.sessionmaker() as session:
            rows = await session.execute(
                text(
                    "SELECT id FROM api_tokens WHERE id = ANY(:ids) AND "
                    "(revoked_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= now()))"
                ),
                {"ids": list(ids)},
            )
            dead: set[uuid.UUID] = {r[0] for r in rows}
        missing = ids - dead
        if missing:  # deleted tokens are as dead as revoked ones
            dead |= missing - await self._existing(missing)
        for conn in list(self.connections):
            if conn.principal.token_id in dead:
                conn.kill(1008, "the token was revoked", "token")

    async def _existing(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        async with self.db.sessionmaker() as session:
            rows = await session.execute(
                text("SELECT id FROM api_tokens WHERE id = ANY(:ids)"), {"ids": list(ids)}
            )
            return {r[0] for r in rows}

    async def shutdown(self) -> None:
        """Close every screen with 1001 (going away); they reconnect to another replica."""
        for conn in list(self.connections):
            conn.kill(1001, "server shutting down", "shutdown")
        writers = [c.writer for c in self.connections if c.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=2)

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "topics": len(self._topics),
            "cursor": self.cursor,
        }
