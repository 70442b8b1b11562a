"""One LISTEN connection per process, fanning PostgreSQL notifications out to callbacks.

PostgreSQL delivers a NOTIFY only when its transaction commits, so a callback runs after the
data it announces is visible. Notifications can be lost while the connection is down: on
every (re)connect each callback is called once with `payload=None`, meaning "you may have
missed something: catch up from your cursor". Callbacks must be quick (set an event, wake a
service); they run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger("ioc.events.listener")

Callback = Callable[[str | None], None]


class Listener:
    """Keeps one asyncpg connection LISTENing on the subscribed channels; reconnects forever."""

    def __init__(self, dsn: str, *, retry_seconds: float = 1.0) -> None:
        self.dsn = dsn
        self.retry_seconds = retry_seconds
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Call `callback(payload)` on every NOTIFY on `channel` (and `None` after reconnects).

        Subscribe before `start()`; channels added later take effect at the next reconnect."""
        self._callbacks[channel].append(callback)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ioc:listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    def _dispatch(self, channel: str, payload: str | None) -> None:
        for callback in self._callbacks.get(channel, []):
            try:
                callback(payload)
            except Exception:  # one bad subscriber must not starve the others
                log.exception("listener callback for %s failed", channel)

    def _on_notify(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        self._dispatch(channel, str(payload))

    def _on_terminate(self, _conn: object) -> None:
        self._lost.set()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _run(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                self._conn = conn
                self._lost.clear()
                conn.add_termination_listener(self._on_terminate)
                for channel in self._callbacks:
                    await conn.add_listener(channel, self._on_notify)
                self.connected.set()
                for channel in list(self._callbacks):
                    self._dispatch(channel, None)
                while not self._lost.is_set():
                    # asyncpg does not notice a dead server on an idle connection by itself.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), timeout=5)
                    if not self._lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listener connection lost (%s); reconnecting", exc)
            await self._close()
            await asyncio.sleep(self.retry_seconds)
