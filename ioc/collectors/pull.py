"""Pull collectors (docs/api.md §1.5): poll `GET {url}?since={cursor}&limit={n}` per source.

Guarantees:
- The cursor is committed in the same transaction as the page's records, with a guard that
  the cursor is still the one the page was asked for: a crash before commit re-fetches the
  page (idempotent upsert), a crash after it never re-counts it.
- Transient failures (connection errors, timeouts, 5xx/429, truncated or garbage bodies) are
  retried with exponential backoff and full jitter; when the attempts of a round are spent
  the failure is recorded in `source_cursors` and metrics and the loop service backs off.
  One source failing never delays another: each source is its own leased loop service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.collectors.records import IngestResult
from ioc.collectors.service import XmlLimits, count, ingest_json, ingest_xml
from ioc.collectors.store import raw_connection
from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn
from ioc.loops import LoopService
from ioc.settings import CollectorSource, Settings

log = logging.getLogger("ioc.collectors")
_NAMED_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.+)$")


class SourceFailed(Exception):
    """A source did not deliver a usable page within the round's attempts."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.detail = detail


class CursorMoved(Exception):
    """Another process advanced this source's cursor (should not happen under the lease)."""


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next: str | None
    has_more: bool


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 4
    base_seconds: float = 0.5
    max_seconds: float = 10.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base·2^attempt)] (spreads retry storms)."""
        return random.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))


def parse_page(body: bytes) -> Page:
    """A §1.5 page, or `SourceFailed("garbage")` naming what is wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceFailed("garbage", f"body is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise SourceFailed("garbage", "body is not {items: [...], next, has_more}")
    nxt, more = data.get("next"), data.get("has_more", False)
    if nxt is not None and not isinstance(nxt, str | int):
        raise SourceFailed("garbage", f"next is {nxt!r}, not a cursor string")
    if not isinstance(more, bool):
        raise SourceFailed("garbage", f"has_more is {more!r}, not a boolean")
    return Page(data["items"], None if nxt is None else str(nxt), more)


async def fetch_page(
    client: httpx.AsyncClient, source: CollectorSource, cursor: str | None, retry: Retry
) -> Page:
    """One page, retried on transient failures; raises `SourceFailed` when attempts run out."""
    params: dict[str, str | int] = {"limit": source.page_size}
    if cursor is not None:
        params["since"] = cursor
    headers = {"Accept": "application/json"}
    if source.auth_header:
        # "X-Api-Key: s3cret" names its header; anything else ("Bearer s3cret") is the
        # value of Authorization.
        named = _NAMED_HEADER.match(source.auth_header)
        if named:
            headers[named[1]] = named[2].strip()
        else:
            headers["Authorization"] = source.auth_header.strip()
    last: SourceFailed | None = None
    for attempt in range(retry.attempts):
        if attempt:
            await asyncio.sleep(retry.delay(attempt))
        try:
            response = await client.get(
                source.url, params=params, headers=headers, timeout=source.timeout_seconds
            )
        except httpx.TimeoutException as exc:
            last = SourceFailed("timeout", f"no answer within {source.timeout_seconds}s ({exc})")
        except httpx.HTTPError as exc:
            last = SourceFailed("error", f"{type(exc).__name__}: {exc}")
        else:
            if response.status_code >= 500 or response.status_code == 429:
                last = SourceFailed("http_error", f"HTTP {response.status_code}")
            elif response.status_code != 200:
                # 4xx: our request or credentials are wrong; retrying will not help
                metrics.COLLECTOR_FETCHES.labels(source.name, "http_error").inc()
                raise SourceFailed("http_error", f"HTTP {response.status_code} (not retried)")
            else:
                try:
                    page = parse_page(response.content)
                except SourceFailed as exc:
                    last = exc
                else:
                    metrics.COLLECTOR_FETCHES.labels(source.name, "ok").inc()
                    return page
        metrics.COLLECTOR_FETCHES.labels(source.name, last.outcome).inc()
        log.warning("source %s: %s (attempt %d)", source.name, last, attempt + 1)
    assert last is not None
    raise last


async def _cursor(db: Database, source: CollectorSource) -> str | None:
    async with db.session() as session:
        conn = await raw_connection(session)
        await conn.execute(
            "INSERT INTO source_cursors (source, feed) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            source.name,
            source.kind,
        )
        cursor: str | None = await conn.fetchval(
            "SELECT cursor FROM source_cursors WHERE source = $1", source.name
        )
        return cursor


async def _ingest_page(
    session: AsyncSession, source: CollectorSource, page: Page, limits: XmlLimits
) -> IngestResult:
    if source.kind == "documents":
        bodies = [i if isinstance(i, str) else json.dumps(i) for i in page.items]
        return await ingest_xml(session, source.name, bodies, limits=limits, strict=False)
    return await ingest_json(
        session, source.kind, source.name, page.items, max_records=max(len(page.items), 1),
        madonvi=source.madonvi,
    )  # fmt: skip


async def _commit_page(
    db: Database, source: CollectorSource, cursor: str | None, page: Page, limits: XmlLimits
) -> IngestResult:
    """Store the page and advance the cursor in one transaction."""
    async with db.session() as session:
        result = await _ingest_page(session, source, page, limits)
        conn = await raw_connection(session)
        moved = await conn.execute(
            """
            UPDATE source_cursors SET cursor = coalesce($3, cursor),
                records_total = records_total + $4, last_success_at = now(),
                last_attempt_at = now(), consecutive_failures = 0, last_error = NULL,
                updated_at = now()
            WHERE source = $1 AND cursor IS NOT DISTINCT FROM $2
            """,
            source.name,
            cursor,
            page.next,
            len(page.items),
        )
        if moved != "UPDATE 1":
            raise CursorMoved(f"source {source.name}: cursor moved under us; page discarded")
    return result


async def record_failure(db: Database, source: CollectorSource, error: str) -> None:
    async with db.session() as session:
        conn = await raw_connection(session)
        row = await conn.fetchrow(
            """
            UPDATE source_cursors SET last_attempt_at = now(), last_error = $2,
                consecutive_failures = consecutive_failures + 1, updated_at = now()
            WHERE source = $1
            RETURNING consecutive_failures,
                      extract(epoch FROM now() - last_success_at)::float8 AS lag
            """,
            source.name,
            error[:500],
        )
    if row is not None:
        metrics.COLLECTOR_FAILURES.labels(source.name).set(row["consecutive_failures"])
        if row["lag"] is not None:
            metrics.COLLECTOR_LAG.labels(source.name).set(row["lag"])


async def poll(
    db: Database,
    client: httpx.AsyncClient,
    source: CollectorSource,
    *,
    retry: Retry = Retry(),
    limits: XmlLimits = XmlLimits(),
    max_pages: int = 100,
) -> int:
    """Fetch and store pages until the source has no more (or `max_pages`); → pages stored.
    Raises `SourceFailed` after recording the failure."""
    pages = 0
    while pages < max_pages:
        cursor = await _cursor(db, source)
        try:
            page = await fetch_page(client, source, cursor, retry)
        except SourceFailed as exc:
            await record_failure(db, source, str(exc))
            raise
        started = time.perf_counter()
        result = await _commit_page(db, source, cursor, page, limits)
        metrics.INGEST_BATCH_DURATION.labels(source.kind).observe(time.perf_counter() - started)
        count(source.name, result)
        metrics.COLLECTOR_LAST_SUCCESS.labels(source.name).set(time.time())
        metrics.COLLECTOR_LAG.labels(source.name).set(0)
        metrics.COLLECTOR_FAILURES.labels(source.name).set(0)
        pages += 1
        if not page.has_more or page.next is None or page.next == cursor:
            break
    return pages


class PullCollector(LoopService):
    """Polls one configured source every `interval_seconds`, on one replica (leased)."""

    leased = True

    def __init__(
        self, db: Database, source: CollectorSource, settings: Settings, *, dsn: str | None
    ) -> None:
        self.name = f"collector:{source.name}"
        super().__init__(dsn=dsn, loop_seconds=source.interval_seconds)
        self.db = db
        self.source = source
        self.limits = XmlLimits(settings.xml_max_bytes, settings.xml_max_depth)
        self._client: httpx.AsyncClient | None = None

    async def run_once(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        await poll(self.db, self._client, self.source, limits=self.limits)

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()


# Failures in a row after which a pulled source counts as down for what depends on it.
SOURCE_DOWN_FAILURES = 3


async def failing_feeds(
    session: AsyncSession, *, min_failures: int = SOURCE_DOWN_FAILURES
) -> dict[str, str]:
    """Feeds whose every pulled source is failing (`min_failures` in a row): feed → why, in
    words. What is computed from such a feed cannot be evaluated now (the alerts' error
    state); a feed with one healthy source, or only pushed to, is not in it."""
    rows = await session.execute(
        text(
            """
            SELECT feed, string_agg(source, ', ' ORDER BY source) AS sources,
                   min(last_success_at) AS since
            FROM source_cursors GROUP BY feed
            HAVING bool_and(consecutive_failures >= :n)
            """
        ),
        {"n": min_failures},
    )
    return {
        row.feed: (
            f"error: source {row.sources} failing"
            + (f" since {row.since.isoformat(timespec='seconds')}" if row.since else "")
        )
        for row in rows
    }


async def source_health(db: Database, sources: list[CollectorSource]) -> dict[str, Any]:
    """Per-source health for /readyz: last success, lag, consecutive failures, counts.

    `ok` stays true while sources fail: a silent source is shown (and alerted on through
    metrics), but it must not take the API replica out of the load balancer."""
    names = [s.name for s in sources if s.enabled]
    async with db.session() as session:
        conn = await raw_connection(session)
        rows = await conn.fetch(
            "SELECT source, feed, last_success_at, last_attempt_at, last_error, "
            "consecutive_failures, records_total FROM source_cursors "
            "WHERE source = ANY($1::text[])",
            names,
        )
    now = datetime.now(UTC)
    seen = {r["source"]: r for r in rows}
    details: dict[str, Any] = {}
    for name in names:
        r = seen.get(name)
        last = r["last_success_at"] if r else None
        lag = (now - last).total_seconds() if last else None
        failures = r["consecutive_failures"] if r else 0
        if lag is not None:
            metrics.COLLECTOR_LAG.labels(name).set(lag)
        details[name] = {
            "feed": r["feed"] if r else None,
            "status": "failing" if failures else ("ok" if last else "waiting"),
            "last_success_at": last.isoformat() if last else None,
            "lag_seconds": round(lag, 1) if lag is not None else None,
            "consecutive_failures": failures,
            "last_error": r["last_error"] if r else None,
            "records_total": r["records_total"] if r else 0,
        }
    return {"ok": True, "sources": details}


def build_services(ctx: AppContext) -> list[LoopService]:
    """One leased pull collector per enabled configured source, and their /readyz check."""
    sources = [s for s in ctx.settings.collectors if s.enabled]
    dsn = asyncpg_dsn(ctx.db.url)
    collectors = [PullCollector(ctx.db, s, ctx.settings, dsn=dsn) for s in sources]

    async def readiness() -> dict[str, Any]:
        return await source_health(ctx.db, sources)

    if sources:
        ctx.readiness["collectors"] = readiness
    return list(collectors)


async def run_collectors(url: str, settings: Settings, *, once: bool) -> dict[str, int]:
    """`ioc collect`: poll the configured sources without the API. With `once`, drain each
    source until it has no more and return pages stored per source; else run until
    cancelled (leased, so it can run beside `ioc serve` replicas)."""
    db = Database(url, pool_size=2)
    sources = [s for s in settings.collectors if s.enabled]
    limits = XmlLimits(settings.xml_max_bytes, settings.xml_max_depth)
    try:
        if once:
            stored: dict[str, int] = {}
            async with httpx.AsyncClient() as client:
                for source in sources:
                    stored[source.name] = await poll(
                        db, client, source, limits=limits, max_pages=1_000_000
                    )
            return stored
        services = [PullCollector(db, s, settings, dsn=asyncpg_dsn(url)) for s in sources]
        for service in services:
            service.start()
        try:
            await asyncio.Event().wait()
        finally:
            for service in services:
                await service.stop()
        return {}
    finally:
        await db.close()
