"""One screen's socket: its reader (client messages), its bounded queue, and its writer.

The hub never awaits a screen: it only calls `offer()`, which is synchronous and O(1). A screen
that is keeping up (nothing queued, its writer idle, its socket not paused) gets the
message written at once through the server's `ioc.websocket.direct` extension
(`ioc.live.server`): the event's frame, built once for every screen, goes straight to the
transport — no task wake-up, no ASGI round per screen.
Otherwise the message is queued, and the writer task drains the queue at the socket's pace.
A screen that falls behind by more than `ws_queue_size` messages is resynchronised with a
fresh snapshot (its queue is dropped), and closed with 1013 if it overflows again within
`ws_overflow_window_seconds` without having caught up in between (a burst is forgiven, a
screen that is always behind is not); a socket that accepts nothing for
`ws_send_timeout_seconds` is cut off (the hub's ticker checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ioc import metrics
from ioc.auth import Principal
from ioc.live.protocol import (
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    Subscribe,
    Wire,
    dumps,
    error_message,
)
from ioc.live.server import DIRECT_EXTENSION

if TYPE_CHECKING:
    from ioc.live.hub import Hub, Topic

log = logging.getLogger("ioc.live")

_SENT = {
    t: metrics.LIVE_MESSAGES_SENT.labels(t)
    for t in ("kpi", "alert", "scorecard", "snapshot", "ping", "pong", "error")
}
_COALESCED = metrics.LIVE_EVENTS_DROPPED.labels("coalesced")
_OVERFLOW = metrics.LIVE_EVENTS_DROPPED.labels("overflow")
_PING_KEY = ("ping",)
_PONG_KEY = ("pong",)
Sink = Callable[[Wire], bool]


def _reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8 (RFC 6455 §5.5)."""
    raw = text.encode("utf-8")
    if len(raw) <= 123:
        return text
    return raw[:120].decode("utf-8", "ignore") + "..."


def direct_writer(scope: Mapping[str, Any]) -> tuple[Sink | None, Callable[[], None] | None]:
    """The server's `ioc.websocket.direct` extension (`ioc.live.server`), if it offers it:
    a synchronous writer of whole messages, and a way to drop the TCP connection.

    Offered by the uvicorn protocol `ioc serve` runs (`WS_IMPLEMENTATION`); under another
    server both are None and the connection keeps to plain ASGI (every message queued and
    sent with the awaited `send`; a stuck socket is closed, not aborted)."""
    extension = (scope.get("extensions") or {}).get(DIRECT_EXTENSION)
    if not isinstance(extension, dict):
        return None, None
    return extension.get("write"), extension.get("abort")


# A client message is a flat object (`subscribe`, `ping`): a few levels are plenty.
MAX_MESSAGE_DEPTH = 16


def nested_deeper_than(data: str, limit: int) -> bool:
    """Whether the JSON text `data` opens more than `limit` arrays/objects at once, read
    without parsing (brackets inside strings do not count)."""
    if data.count("[") + data.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in data:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class ScreenConnection:
    """One screen's socket: subscribed, or about to subscribe."""

    def __init__(self, hub: Hub, websocket: WebSocket, principal: Principal) -> None:
        settings = hub.settings
        self.hub = hub
        self.ws = websocket
        self.principal = principal
        self.maxsize = settings.ws_queue_size
        # coalesce KPI values only once this many messages wait (a lagging screen)
        self.coalesce_after = max(1, self.maxsize // 8)
        self._unique = 0
        self.max_message = settings.ws_max_message_bytes
        self.queue: OrderedDict[Hashable, Wire] = OrderedDict()
        self.topic: Topic | None = None
        # Work the writer must do before draining the queue: a snapshot, or a replay from
        # `since`. While set, offers are dropped: the job covers them (see `_run_job`).
        self.job: tuple[str, int] | None = None
        self.closing: tuple[int, str, Wire | None] | None = None
        self.wake = asyncio.Event()
        # True while the writer waits with nothing to do: an offer may then write at once
        # through `sink` (nothing queued or in flight can be overtaken).
        self.idle = False
        # the server's direct writer and TCP abort (`direct_writer`), set by `run`
        self.sink: Sink | None = None
        self._abort_transport: Callable[[], None] | None = None
        now = time.monotonic()
        self.last_rx = now
        self.last_tx = now
        self.sending_since: float | None = None
        self.overflowed_at: float | None = None
        # True once the queue was empty after the last overflow: a burst, not a slow screen
        self.caught_up = True
        self.writer: asyncio.Task[None] | None = None

    # --- called by the hub (synchronous, never blocks)

    def offer(self, key: Hashable, wire: Wire) -> bool:
        """Write a message at once if the screen keeps up (True: the caller counts it), else
        queue it; coalesce by key; resynchronise or close on overflow."""
        if self.closing is not None or self.job is not None:
            return False
        if self.idle and self.sink is not None and self.sink(wire):
            self.last_tx = time.monotonic()
            return True
        queue = self.queue
        if key in queue:
            if len(queue) >= self.coalesce_after:
                # the screen is behind: the newer value replaces the one still waiting
                del queue[key]
                _COALESCED.inc()
            else:
                # a screen that keeps up gets every value, even several of one KPI from
                # one commit: a unique key keeps both
                self._unique += 1
                key = (key, self._unique)
        if len(queue) >= self.maxsize:
            self._overflow()
            return False
        queue[key] = wire
        self.idle = False  # later offers queue behind this one, in order
        self.wake.set()
        return False

    def ping(self, seq: int) -> None:
        """`{"type": "ping", "seq": N}` when idle: everything for this screen up to N was sent."""
        idle = self.closing is None and self.job is None and not self.queue
        if idle and self.offer(_PING_KEY, Wire(dumps({"type": "ping", "seq": seq}))):
            _SENT["ping"].inc()

    def kill(self, code: int, reason: str, why: str, *, final: Wire | None = None) -> None:
        """Close with `code` and `reason` after sending `final` (if any); drops the queue."""
        if self.closing is not None:
            return
        self.closing = (code, _reason(reason), final)
        metrics.LIVE_DISCONNECTS.labels(why).inc()
        self.queue.clear()
        self.job = None
        self.hub.detach(self)
        self.wake.set()

    def abort(self, reason: str, why: str) -> None:
        """Cut off a screen whose socket accepts nothing: close code 1013, then drop TCP."""
        self.kill(CLOSE_TRY_AGAIN, reason, why)
        if self.writer is not None:
            self.writer.cancel()
        if self._abort_transport is not None:
            self._abort_transport()

    def _overflow(self) -> None:
        settings = self.hub.settings
        _OVERFLOW.inc(len(self.queue) + 1)
        now = time.monotonic()
        if settings.ws_overflow == "close" or (
            self.overflowed_at is not None
            and not self.caught_up
            and now - self.overflowed_at < settings.ws_overflow_window_seconds
        ):
            self.kill(
                CLOSE_TRY_AGAIN,
                f"too slow: more than {self.maxsize} messages pending; reconnect with since",
                "overflow",
            )
            return
        self.overflowed_at = now
        self.caught_up = False
        self.queue.clear()
        self.job = ("snapshot", 0)
        metrics.LIVE_RESYNCS.labels("overflow").inc()
        self.wake.set()

    # --- the connection's life

    async def run(self) -> None:
        """Serve the (accepted) socket until either side closes it."""
        self.hub.connections.add(self)
        metrics.LIVE_CLIENTS.inc()
        self.sink, self._abort_transport = direct_writer(self.ws.scope)
        self.writer = asyncio.create_task(self._write(), name="ioc:live:writer")
        try:
            await self._read()
        except WebSocketDisconnect:
            pass
        finally:
            self.hub.connections.discard(self)
            metrics.LIVE_CLIENTS.dec()
            self.hub.detach(self)
            if not self.writer.done():
                if self.closing is not None:  # let the close frame go out
                    await asyncio.wait({self.writer}, timeout=2)
                self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.writer

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = (message.get("bytes") or b"").decode("utf-8", "replace")
            self.last_rx = time.monotonic()
            if self.closing is not None:
                continue
            if len(data) > self.max_message:
                detail = f"message of {len(data)} bytes; the limit is {self.max_message}"
                self.kill(
                    CLOSE_TOO_BIG,
                    detail,
                    "too_big",
                    final=error_message(400, "Message too big", detail),
                )
                continue
            await self._handle(data)

    async def _handle(self, data: str) -> None:
        if nested_deeper_than(data, MAX_MESSAGE_DEPTH):
            # json.loads would recurse ~1,000 levels deep and raise RecursionError, which
            # once dropped the socket without a close frame and stalled the loop.
            self._refuse(
                400,
                "Message too deep",
                f"the message is nested deeper than {MAX_MESSAGE_DEPTH} levels",
                "too_deep",
            )
            return
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            obj = None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "ping":
            if self.offer(_PONG_KEY, Wire(dumps({"type": "pong", "seq": self.hub.cursor}))):
                _SENT["pong"].inc()
        elif kind == "pong":
            return
        elif kind == "subscribe" and isinstance(obj, dict):
            await self._subscribe(obj)
        else:
            self._refuse(
                400,
                "Invalid message",
                'expected a JSON object with "type": "subscribe" or "ping"',
            )

    def _refuse(self, status: int, title: str, detail: str, why: str = "invalid") -> None:
        self.kill(CLOSE_POLICY, detail, why, final=error_message(status, title, detail))

    async def _subscribe(self, obj: dict[str, Any]) -> None:
        try:
            sub = Subscribe.model_validate(obj)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            self._refuse(422, "Invalid subscribe", f"invalid subscribe: {problems}")
            return
        hub = self.hub
        scope = await hub.unit_scope(sub.unit)
        if not scope.subtree:
            self._refuse(
                422, "Unknown unit", f"unit {sub.unit} is not a known GSO code", "unknown_unit"
            )
            return
        mine = self.principal.unit_code
        if mine is not None and sub.unit not in (await hub.unit_scope(mine)).subtree:
            self._refuse(
                403,
                "Outside your unit",
                f"unit {sub.unit} is outside this token's unit {mine}",
                "out_of_scope",
            )
            return
        topic = await hub.topic_for(sub.unit, list(sub.windows))
        if self.closing is not None:
            return
        self.queue.clear()
        hub.attach(self, topic)
        self.job = ("replay", sub.since) if sub.since is not None else ("snapshot", 0)
        self.overflowed_at = None
        self.wake.set()

    async def _write(self) -> None:
        try:
            while True:
                self.idle = self.closing is None and self.job is None and not self.queue
                await self.wake.wait()
                self.wake.clear()
                self.idle = False
                while True:
                    if self.closing is not None:
                        await self._close()
                        return
                    if self.job is not None:
                        await self._run_job()
                        continue
                    if not self.queue:
                        self.caught_up = True
                        break
                    _, wire = self.queue.popitem(last=False)
                    await self._send(wire)
        except (WebSocketDisconnect, OSError, RuntimeError):
            return  # the peer is gone; the reader notices too

    async def _send(self, wire: Wire) -> None:
        sink = self.sink
        if sink is None or not sink(wire):
            # paused (the peer reads slowly), or no direct path: ASGI waits for the socket
            self.sending_since = time.monotonic()
            await self.ws.send_text(wire.text)
            self.sending_since = None
        self.last_tx = time.monotonic()
        counter = _SENT.get(wire.kind)
        if counter is not None:
            counter.inc()

    async def _close(self) -> None:
        assert self.closing is not None
        code, reason, final = self.closing
        if final is not None:
            await self._send(final)
        self.sending_since = time.monotonic()
        await self.ws.close(code, reason)
        self.sending_since = None

    async def _run_job(self) -> None:
        """Send the snapshot or the replay the screen needs, bounded by the hub's cursor now."""
        assert self.job is not None
        kind, since = self.job
        self.job = None
        topic = self.topic
        if topic is None:
            return
        upto = self.hub.cursor  # from here on, events after `upto` are queued by `offer`
        try:
            messages = await self.hub.replay(topic, since, upto) if kind == "replay" else None
            if messages is None:
                if kind == "replay":
                    metrics.LIVE_RESYNCS.labels("too_old").inc()
                messages = [Wire(await self.hub.snapshot(topic, upto))]
        except Exception:  # the database or a room failed: tell the screen to come back
            log.exception("live: snapshot/replay of %s failed", topic.unit)
            self.kill(
                1011,
                "snapshot unavailable; reconnect with backoff",
                "error",
                final=error_message(503, "Snapshot unavailable", "retry later"),
            )
            return
        for wire in messages:
            if self.job is not None or self.closing is not None or self.topic is not topic:
                return  # overflow or resubscribe: a newer job supersedes this one
            await self._send(wire)
