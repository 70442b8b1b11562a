"""KPI engine benchmark: a province-sized history, snapshot latency and commit-to-event latency,
each beside the naive GROUP BY over the raw tables measured in the same run.

    .venv/bin/python benchmarks/kpis.py --server postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/kpis.py --scale 0.1        # 1M dossiers, 200k reports, 100k docs

Creates a throw-away database on that server (dropped at the end unless --keep), loads the
demo province (70, 111 communes), generates the history with set-based SQL
(`generate_series`), rebuilds the aggregates, starts a real `ioc` server (uvicorn, with the
KPI engine) and prints figures. Never a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from sqlalchemy import text

from ioc.app import create_app
from ioc.auth import create_token
from ioc.db import Database, upgrade
from ioc.db.engine import asyncpg_dsn, with_database
from ioc.kpis import rebuild, snapshot
from ioc.settings import Settings
from ioc.units import DEMO_FILES, DEMO_ORGANS, load_organs_csv, load_units_csv
from tests.kpis.naive import naive_values

KPI_TABLES = (
    "kpi_dossier_proj",
    "kpi_report_proj",
    "kpi_document_proj",
    "kpi_counts",
    "kpi_open",
    "kpi_service_day",
    "kpi_service",
    "kpi_service_usage",
    "kpi_current",
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:8.1f} ms   p99 {pct(values, 0.99) * 1000:8.1f} ms"


GENERATE = [
    # Communes numbered 0..110; volumes skewed (squared random) so communes differ. The
    # `0 * g` keeps each LATERAL correlated, so it draws new random numbers for every row.
    """
    CREATE TABLE bench_communes AS
    SELECT (row_number() OVER (ORDER BY code)) - 1 AS i, code FROM units WHERE level = 'commune'
    """,
    # 50 procedures per commune, 80 % offered online.
    """
    INSERT INTO procedures (source, code, unit_code, online, raw, change_seq)
    SELECT 'bench', 'P' || p, c.code, (p % 5) <> 0, '{}', nextval('record_change_seq')
    FROM bench_communes c CROSS JOIN generate_series(1, 50) p
    """,
    """
    INSERT INTO dossiers (source, source_id, procedure_code, channel, unit_code, unit_ref,
        received_at, due_at, finished_at, status, digitized, paid_online, source_updated_at,
        raw, change_seq)
    SELECT 'bench', 'd' || g, 'P' || (1 + (g * 7) % 50), 1 + (g % 3), c.code, c.code,
           t.rec, t.rec + interval '10 days',
           CASE WHEN t.done THEN t.rec + (random() * 14) * interval '1 day' END,
           CASE WHEN t.done THEN 10 WHEN g % 97 = 0 THEN 7 ELSE 4 END,
           random() < 0.8, (g % 3) = 1 AND random() < 0.6, t.rec, '{}',
           nextval('record_change_seq')
    FROM generate_series(1, :n) g
    CROSS JOIN LATERAL (SELECT now() - (random() + 0 * g) * :years * interval '365 days' AS rec,
                               floor(111 * power(random(), 2))::int AS i) r
    CROSS JOIN LATERAL (SELECT r.rec, r.rec < now() - interval '20 days'
                               OR random() < 0.5 AS done) t
    JOIN bench_communes c ON c.i = r.i
    """,
    """
    INSERT INTO reports (source, source_id, received_at, channel, category, unit_code, unit_ref,
        status, due_at, first_response_at, resolved_at, source_updated_at, raw, change_seq)
    SELECT 'bench', 'r' || g, t.rec, 'phone', 'other', c.code, c.code,
           CASE WHEN t.done THEN 'resolved' ELSE 'in_progress' END,
           t.rec + interval '7 days',
           CASE WHEN random() < 0.9 THEN t.rec + random() * interval '48 hours' END,
           CASE WHEN t.done THEN t.rec + random() * interval '10 days' END,
           t.rec, '{}', nextval('record_change_seq')
    FROM generate_series(1, :n) g
    CROSS JOIN LATERAL (SELECT now() - (random() + 0 * g) * :years * interval '365 days' AS rec,
                               floor(111 * power(random(), 2))::int AS i) r
    CROSS JOIN LATERAL (SELECT r.rec, r.rec < now() - interval '15 days'
                               OR random() < 0.5 AS done) t
    JOIN bench_communes c ON c.i = r.i
    """,
    """
    INSERT INTO documents (source, document_id, sender_organ, unit_code, due_on, electronic,
        completed_at, sent_at, raw_xml, change_seq)
    SELECT 'bench', 'doc' || g, 'organ', c.code,
           CASE WHEN g % 2 = 0 THEN (r.sent + interval '10 days')::date END,
           random() < 0.97,
           CASE WHEN r.sent < now() - interval '20 days' OR random() < 0.5
                THEN r.sent + interval '5 days' END,
           r.sent, '<x/>', nextval('record_change_seq')
    FROM generate_series(1, :n) g
    CROSS JOIN LATERAL (SELECT now() - (random() + 0 * g) * :years * interval '365 days' AS sent,
                               floor(111 * random())::int AS i) r
    JOIN bench_communes c ON c.i = r.i
    """,
    """
    INSERT INTO document_recipients (document_pk, organ_id, unit_code, completed_at)
    SELECT d.id, 'organ-r', c.code, d.completed_at
    FROM documents d JOIN bench_communes c ON c.i = (d.id * 31) % 111
    """,
    "ANALYZE",
]


async def generate(url: str, scale: float, years: int) -> dict[str, int]:
    sizes = {
        "dossiers": int(10_000_000 * scale),
        "reports": int(2_000_000 * scale),
        "documents": int(1_000_000 * scale),
    }
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for sql in GENERATE:
            n = (
                sizes["dossiers"]
                if "INTO dossiers" in sql
                else sizes["reports"]
                if "INTO reports" in sql
                else sizes["documents"]
            )
            started = time.perf_counter()
            await conn.execute(sql.replace(":n", str(n)).replace(":years", str(years)))
            first = " ".join(sql.split())[:60]
            print(f"  {time.perf_counter() - started:7.1f} s  {first}", flush=True)
    finally:
        await conn.close()
    return sizes


async def counted(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {
            t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
            for t in ("dossiers", "reports", "documents")
        }
    finally:
        await conn.close()


async def serve(
    url: str, *, all_services: bool = False
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """A real `ioc` server (API, KPI engine, live hub). Without `all_services` the feed and
    alert services are off: on a freshly generated history the feeds room's record-event
    service would spend the whole run publishing one event per generated record, in the
    same process, and that is not the KPI path being measured."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(
        database_url=url,
        migrate_on_start=False,
        port=port,
        feeds_enabled=all_services,
        alerts_enabled=all_services,
    )
    app = create_app(settings, database_url=url)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise RuntimeError("the ioc server did not start (see the log above)")
        await asyncio.sleep(0.05)
    return server, task, port


async def engine_seconds(port: int) -> tuple[float, float]:
    """Total time the server's KPI engine has spent emitting rounds and folding their
    journals (its own histograms)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        text = (await http.get("/metrics")).text
    sums = {}
    for line in text.splitlines():
        for name in ("round", "fold"):
            if line.startswith(f"ioc_kpis_{name}_duration_seconds_sum"):
                sums[name] = float(line.split()[-1])
    return sums.get("round", 0.0), sums.get("fold", 0.0)


async def direct_latencies(db: Database, unit: str, n: int) -> list[float]:
    """`snapshot()` in-process: the engine's share of a request, without HTTP and auth."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        async with db.session() as s:
            await snapshot(s, unit, "year", children=True)
        out.append(time.perf_counter() - started)
    return out


async def http_latencies(http: httpx.AsyncClient, params: dict[str, str], n: int) -> list[float]:
    for _ in range(5):  # warm-up
        (await http.get("/api/v1/kpis", params=params)).raise_for_status()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        r = await http.get("/api/v1/kpis", params=params)
        out.append(time.perf_counter() - started)
        r.raise_for_status()
    return out


async def naive_latencies(db: Database, units: list[str], n: int) -> list[float]:
    from datetime import UTC, datetime

    out = []
    for _ in range(n):
        started = time.perf_counter()
        async with db.session() as s:
            await naive_values(s, units, "year", datetime.now(UTC))
        out.append(time.perf_counter() - started)
    return out


BATCH = """
WITH lock AS (SELECT pg_advisory_xact_lock(hashtext('ioc.ingest')))
, c AS (SELECT i, code FROM bench_communes)
, new_dossiers AS (
    INSERT INTO dossiers (source, source_id, procedure_code, channel, unit_code, unit_ref,
        received_at, due_at, status, digitized, paid_online, source_updated_at, raw, change_seq)
    SELECT 'bench', 'b{b}-' || g, 'P' || (1 + g % 50), 1 + g % 3, c.code, c.code, now(),
           now() + interval '10 days', 2, true, false, now(), '{{}}',
           nextval('record_change_seq')
    FROM generate_series(1, 600) g JOIN c ON c.i = g % 111, lock
    RETURNING 1)
, finished AS (
    UPDATE dossiers SET finished_at = now(), status = 10,
        change_seq = nextval('record_change_seq')
    WHERE id IN (SELECT id FROM dossiers WHERE finished_at IS NULL AND status = 4
                 ORDER BY id LIMIT 100 OFFSET {offset})
    RETURNING 1)
, new_reports AS (
    -- answered now, received a spread of times before: exponential, mean 4 h, at most 32 h,
    -- stamped to the second (as sources stamp them), so few response times are equal
    INSERT INTO reports (source, source_id, received_at, channel, category, unit_code,
        unit_ref, status, due_at, first_response_at, source_updated_at, raw, change_seq)
    SELECT 'bench', 'b{b}-' || g, r.received, 'app', 'other', c.code, c.code,
           'assigned', r.received + interval '3 days', now(), now(), '{{}}',
           nextval('record_change_seq')
    FROM generate_series(1, 250) g JOIN c ON c.i = (g * 7) % 111, lock,
    LATERAL (SELECT date_trunc('second', now() - least(-ln(1 - random() + 0 * g), 8)
                                                 * interval '4 hours') AS received) r
    RETURNING 1)
, new_documents AS (
    INSERT INTO documents (source, document_id, sender_organ, unit_code, electronic, sent_at,
        raw_xml, change_seq)
    SELECT 'bench', 'b{b}-' || g, 'organ', c.code, true, now(), '<x/>',
           nextval('record_change_seq')
    FROM generate_series(1, 50) g JOIN c ON c.i = (g * 13) % 111, lock
    RETURNING 1)
SELECT (SELECT count(*) FROM new_dossiers) + (SELECT count(*) FROM finished)
     + (SELECT count(*) FROM new_reports) + (SELECT count(*) FROM new_documents)
"""


async def event_latencies(url: str, batches: int) -> tuple[list[float], list[int]]:
    """Commit a 1,000-record batch, then time until the engine has committed the round that
    folded it in (its cursor passed the batch) together with its KPI events."""
    listener = await asyncpg.connect(asyncpg_dsn(url))
    writer = await asyncpg.connect(asyncpg_dsn(url))
    heard: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("ioc_events", lambda *_: heard.put_nowait(time.perf_counter()))
    out: list[float] = []
    sizes: list[int] = []
    try:
        await asyncio.sleep(1.0)
        for b in range(batches):
            async with writer.transaction():
                n = await writer.fetchval(BATCH.format(b=f"{os.getpid()}-{b}", offset=b * 100))
                target = await writer.fetchval("SELECT last_value FROM record_change_seq")
                await writer.execute("SELECT pg_notify('ioc_ingest', 'dossiers')")
            committed = time.perf_counter()
            sizes.append(int(n))
            while True:
                arrived = await asyncio.wait_for(heard.get(), timeout=120)
                if arrived < committed:
                    continue
                cursor = await writer.fetchval("SELECT change_cursor FROM kpi_state")
                if cursor >= target:
                    out.append(arrived - committed)
                    break
            await asyncio.sleep(0.5)
    finally:
        await listener.close()
        await writer.close()
    return out, sizes


async def main(args: argparse.Namespace) -> None:
    name = args.reuse or f"ioc_bench_kpis_{os.getpid()}"
    if not args.reuse:
        admin = await asyncpg.connect(asyncpg_dsn(args.server))
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
    url = with_database(args.server, name)
    try:
        await upgrade(url)
        db = Database(url, pool_size=4)
        async with db.session() as s:
            if not args.reuse:
                for path in DEMO_FILES:
                    await load_units_csv(s, Path(path))
                await load_organs_csv(s, Path(DEMO_ORGANS))
            secret, _ = await create_token(s, name="bench", role="admin", unit_code=None)
        if args.reuse:
            print(f"reusing the history in {name}", flush=True)
            sizes = await counted(url)
        else:
            print(f"generating (scale {args.scale}, {args.years} years):", flush=True)
            sizes = await generate(url, args.scale, args.years)
        started = time.perf_counter()
        if args.reuse and args.skip_rebuild:
            print("  aggregates kept as they are (--skip-rebuild)")
        else:
            async with db.session() as s:
                result = await rebuild(s)
            print(f"  {time.perf_counter() - started:7.1f} s  rebuild: {result.records} records")
        # What autovacuum does in production after a bulk load: statistics and visibility
        # maps (index-only scans) for the tables a rebuild just filled.
        started = time.perf_counter()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(f"VACUUM (ANALYZE) {', '.join(KPI_TABLES)}")
        finally:
            await conn.close()
        print(f"  {time.perf_counter() - started:7.1f} s  VACUUM (ANALYZE) of the KPI tables")
        started_at = datetime.now(UTC)
        server, task, port = await serve(url, all_services=args.all_services)
        try:
            # Ready = the engine's first round done: it loads its memory of the current
            # windows (~1 s here, the event loop shared with the API), as after each local
            # midnight; the figures below are the steady state.
            loaded = time.perf_counter()
            while True:
                async with db.session() as s:
                    last = (await s.execute(text("SELECT last_run_at FROM kpi_state"))).scalar_one()
                if last is not None and last >= started_at:
                    break
                await asyncio.sleep(0.1)
            print(f"  {time.perf_counter() - loaded:7.1f} s  engine's first round (memory load)")
            headers = {"Authorization": f"Bearer {secret}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
            ) as http:
                prov = await http_latencies(
                    http, {"unit": "70", "window": "year", "children": "true"}, args.requests
                )
                commune = await http_latencies(
                    http, {"unit": "25195", "window": "year", "children": "true"}, args.requests
                )
            direct_prov = await direct_latencies(db, "70", args.requests)
            direct_commune = await direct_latencies(db, "25195", args.requests)
            districts = [f"{c}" for c in range(688, 699)]
            naive_prov = await naive_latencies(db, ["70", *districts], args.naive)
            naive_commune = await naive_latencies(db, ["25195"], args.naive)
            before = await engine_seconds(port)
            events, batch_sizes = await event_latencies(url, args.batches)
            after = await engine_seconds(port)
            emit_per_batch, fold_per_batch = (
                (b - a) / max(1, args.batches) for a, b in zip(before, after, strict=True)
            )
        finally:
            server.should_exit = True
            await task
        # The naive path after a batch: recompute the province's figures from the raw tables.
        naive_after = await naive_latencies(db, ["70"], args.naive)
        await db.close()
        print()
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(
            f"history: {sizes['dossiers']:,} dossiers, {sizes['reports']:,} reports, "
            f"{sizes['documents']:,} documents, {args.years} years, 111 communes"
        )
        print(f"GET /api/v1/kpis?unit=70&window=year&children=true     {ms(prov)}")
        print(f"  snapshot() in-process (no HTTP, no auth)             {ms(direct_prov)}")
        print(f"  naive GROUP BY (province + 11 districts, year)       {ms(naive_prov)}")
        print(f"GET /api/v1/kpis?unit=25195&window=year&children=true  {ms(commune)}")
        print(f"  snapshot() in-process (no HTTP, no auth)             {ms(direct_commune)}")
        print(f"  naive GROUP BY (commune, year)                       {ms(naive_commune)}")
        print(
            f"batch of {statistics.mean(batch_sizes):.0f} records committed → KPI events "
            f"committed  {ms(events)}"
        )
        print(
            f"  p90 {pct(events, 0.9) * 1000:.1f} ms; each batch (ms, in order): "
            + " ".join(f"{e * 1000:.0f}" for e in events)
        )
        print(
            "  engine per batch (server metrics): emit (to events committed) "
            f"{emit_per_batch * 1000:.1f} ms, then fold {fold_per_batch * 1000:.1f} ms"
        )
        print(f"  naive: recompute the province's year figures        {ms(naive_after)}")
        print(
            "ratios to the naive GROUP BY (p50): province "
            f"{pct(naive_prov, 0.5) / pct(prov, 0.5):.0f}x over HTTP, "
            f"{pct(naive_prov, 0.5) / pct(direct_prov, 0.5):.0f}x in-process; commune "
            f"{pct(naive_commune, 0.5) / pct(commune, 0.5):.0f}x over HTTP, "
            f"{pct(naive_commune, 0.5) / pct(direct_commune, 0.5):.0f}x in-process; "
            f"batch to events {pct(naive_after, 0.5) / pct(events, 0.5):.1f}x"
        )
        print(
            "server: API + KPI engine + live hub"
            + (" + feeds + alerts" if args.all_services else " (feeds and alerts off)")
        )
    finally:
        if not args.keep and not args.reuse:
            admin = await asyncpg.connect(asyncpg_dsn(args.server))
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        else:
            print(f"kept database {name}")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("IOC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server URL (a database is created on it and dropped)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="1.0 = 10M dossiers, 2M reports, 1M documents (the issue's sizes)",
    )
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="HTTP requests per unit")
    parser.add_argument("--naive", type=int, default=5, help="naive GROUP BY repetitions")
    parser.add_argument("--batches", type=int, default=10, help="1,000-record ingest batches")
    parser.add_argument(
        "--all-services",
        action="store_true",
        help="also run the feed and alert services in the measured server",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--skip-rebuild",
        action="store_true",
        help="with --reuse: trust the kept aggregates (the last run left them current)",
    )
    parser.add_argument(
        "--reuse", metavar="DBNAME", help="measure again on a database kept by --keep (rebuilt)"
    )
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
