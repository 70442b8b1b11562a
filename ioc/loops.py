"""Background work as small loop services (after Prefect's `LoopService`), and leases.

A `LoopService` runs `run_once()` every `loop_seconds` (or sooner when `wake()`d), logs and
counts failures without dying, and stops cleanly. With `leased=True` it runs only while it
holds a PostgreSQL advisory lock on a dedicated connection: exactly one replica does the
work, and when that process dies its connection (hence the lock) goes, so another replica
takes over within one `loop_seconds`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time

import asyncpg

from ioc import metrics

log = logging.getLogger("ioc.loops")


def lease_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lease name."""
    return int.from_bytes(hashlib.sha256(f"ioc:{name}".encode()).digest()[:8], "big", signed=True)


class Lease:
    """A named, process-exclusive lease held as a session advisory lock.

    The connection is kept while waiting as well (a standby), so retrying costs one round
    trip rather than a new connection, and the standby notices a free lease within
    `LoopService.lease_retry_seconds` of the holder's death."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.name = name
        self.key = lease_key(name)
        self._conn: asyncpg.Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held and self._conn is not None and not self._conn.is_closed()

    async def try_acquire(self) -> bool:
        """Take the lease if free; True if this process holds it (now or already)."""
        if self._conn is not None and not self._conn.is_closed():
            try:
                if self._held:
                    await self._conn.fetchval("SELECT 1", timeout=5)
                    return True
                return await self._try_lock(self._conn)
            except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await self.release()  # a dead connection: reconnect below
        try:
            # The name says which process holds which lease (pg_stat_activity), also over a
            # Unix socket where no client port tells processes apart.
            self._conn = await asyncpg.connect(
                self.dsn,
                timeout=5,
                server_settings={"application_name": f"ioc lease {self.name} pid {os.getpid()}"},
            )
            return await self._try_lock(self._conn)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("lease %s: cannot reach the database: %s", self.name, exc)
            await self.release()
            return False

    async def _try_lock(self, conn: asyncpg.Connection) -> bool:
        self._held = bool(
            await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key, timeout=5)
        )
        if self._held:
            log.info("lease %s acquired", self.name)
        return self._held

    async def release(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


class LoopService(abc.ABC):
    """Subclass and implement `run_once()`; the lifespan calls `start()` and `stop()`."""

    name: str = "service"
    loop_seconds: float = 5.0
    leased: bool = False
    # A standby replica retries the lease this often even when `loop_seconds` is long
    # (an hourly purge must still fail over in seconds).
    lease_retry_seconds: float = 2.0

    def __init__(self, *, dsn: str | None = None, loop_seconds: float | None = None) -> None:
        if loop_seconds is not None:
            self.loop_seconds = loop_seconds
        self._dsn = dsn
        self._lease = Lease(dsn, self.name) if (self.leased and dsn) else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.consecutive_failures = 0

    @abc.abstractmethod
    async def run_once(self) -> None:
        """One round of the service's work; an exception is logged, counted and backed off."""

    def wake(self) -> None:
        """Run again now instead of waiting for the next tick."""
        self._wake.set()

    @property
    def is_leader(self) -> bool:
        return self._lease is None or self._lease.held

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"ioc:{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lease is not None:
            await self._lease.release()
            metrics.SERVICE_LEASE_HELD.labels(self.name).set(0)

    async def _loop(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            # Cleared before the round, not after: a wake() arriving while run_once() runs
            # (new records committed meanwhile) starts the next round at once.
            self._wake.clear()
            held = self._lease is None or await self._lease.try_acquire()
            if self._lease is not None:
                # Observable fail-over: sum by service of this gauge is 1 across replicas.
                metrics.SERVICE_LEASE_HELD.labels(self.name).set(1 if held else 0)
            if held:
                try:
                    await self.run_once()
                    self.consecutive_failures = 0
                    metrics.SERVICE_RUNS.labels(self.name, "ok").inc()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a failed round must not kill the loop: log, count, retry
                    self.consecutive_failures += 1
                    metrics.SERVICE_RUNS.labels(self.name, "error").inc()
                    log.exception(
                        "%s: run failed (%d in a row)", self.name, self.consecutive_failures
                    )
            delay = self.loop_seconds - (time.monotonic() - started)
            if not held:
                delay = min(delay, self.lease_retry_seconds)
            if self.consecutive_failures:
                backoff = min(60.0, self.loop_seconds * 2 ** min(self.consecutive_failures, 6))
                delay = max(delay, backoff * (0.5 + random.random() / 2))
                self._wake.clear()  # a failing round backs off even when woken meanwhile
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, delay))
