"""Ingest benchmark: records/s of the pipeline and of the HTTP push endpoint, each against a
raw asyncpg COPY of the same rows into a bare table with a primary key, measured in the
same run; plus peak RSS (constant-memory backfill).

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/ingest.py [--quick] [--records N] [--backfill N]
        [--servers 1|2] [--concurrency N]

The raw baseline: the same dossiers, already parsed (parsing is not timed), COPYed with
asyncpg's binary `copy_records_to_table` in batches of `--batch` rows into a fresh table
with the same columns and a primary key on (source, source_id); run three times (a fresh
table each time) and the median taken, since one run on a shared machine varies ±30 %.

The backfill runs in a child process of its own, so its peak RSS is its own (the raw COPY
above holds every row in memory; the backfill streams).

Creates and drops its own database on that server. Prints `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.auth import create_token  # noqa: E402
from ioc.collectors import ingest_json  # noqa: E402
from ioc.collectors.dossiers import parse_dossier  # noqa: E402
from ioc.collectors.records import DossierRecord  # noqa: E402
from ioc.db import Database, upgrade  # noqa: E402
from ioc.db.engine import asyncpg_dsn, with_database  # noqa: E402
from ioc.units import DEMO_FILES, DEMO_ORGANS, load_organs_csv, load_units_csv  # noqa: E402

UNITS = ["689", "688", "690", "25195", "25204", "25213", "691", "692", "25222"]
BASE = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


def dossiers(n: int, seed: int = 1, prefix: str = "B") -> Iterator[dict[str, Any]]:
    """`n` realistic dossiers in the portal's wire format, generated lazily."""
    rng = random.Random(seed)
    for i in range(n):
        received = BASE + timedelta(minutes=i % 40_000, seconds=rng.randrange(60))
        finished = rng.random() < 0.7
        yield {
            "MaHoSo": f"{prefix}-{i:08d}",
            "MaTTHC": "1.001612.000.00.00.H10",
            "TenTTHC": "Đăng ký thành lập hộ kinh doanh",
            "MaLinhVuc": "G09-TL01",
            "KenhThucHien": 1 + i % 3,
            "MaDonVi": UNITS[i % len(UNITS)],
            "NgayTiepNhan": f"{received + timedelta(hours=7):%Y%m%d%H%M%S}",
            "NgayHenTra": f"{received + timedelta(days=3, hours=7):%Y%m%d%H%M%S}",
            **(
                {"NgayKetThucXuLy": f"{received + timedelta(days=2, hours=7):%Y%m%d%H%M%S}"}
                if finished
                else {}
            ),
            "TrangThaiHoSo": 9 if finished else 4,
            "MucDo": 4,
            "DaSoHoa": rng.random() < 0.8,
            "ThanhToanTrucTuyen": False,
            "ChuHoSo": "Nguyễn Thị Hồng Nhung",
            "SoDienThoai": "0912345678",
            "DiaChi": "Phường Tân Phú, Thành phố Đồng Xoài, Bình Phước",
        }


def batches(it: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in it:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM: per address space, so it starts
    afresh at exec; `ru_maxrss` would count the parent's pages a child shared before exec)."""
    return peak_rss_of(os.getpid())


RAW_TABLE = """
CREATE TABLE bench_raw (
    source text, source_id text, procedure_code text, procedure_name text, sector_code text,
    sector_name text, channel smallint, unit_code text, unit_ref text, received_at timestamptz,
    due_at timestamptz, finished_at timestamptz, returned_at timestamptz, status smallint,
    service_level smallint, digitized boolean, paid_online boolean, applicant_name text,
    applicant_phone text, applicant_email text, applicant_address text,
    source_updated_at timestamptz, raw jsonb, PRIMARY KEY (source, source_id))
"""


def raw_row(rec: DossierRecord) -> tuple[Any, ...]:
    return (
        "raw", rec.source_id, rec.procedure_code, rec.procedure_name, rec.sector_code,
        rec.sector_name, rec.channel, rec.unit_ref, rec.unit_ref, rec.received_at, rec.due_at,
        rec.finished_at, rec.returned_at, rec.status, rec.service_level, rec.digitized,
        rec.paid_online, rec.applicant_name, rec.applicant_phone, rec.applicant_email,
        rec.applicant_address, rec.source_updated_at, rec.raw,
    )  # fmt: skip


RAW_COLUMNS = [
    "source", "source_id", "procedure_code", "procedure_name", "sector_code",
    "sector_name", "channel", "unit_code", "unit_ref", "received_at", "due_at",
    "finished_at", "returned_at", "status", "service_level", "digitized",
    "paid_online", "applicant_name", "applicant_phone", "applicant_email",
    "applicant_address", "source_updated_at", "raw",
]  # fmt: skip


async def raw_copy(dsn: str, n: int, batch: int, runs: int = 3) -> list[float]:
    """Rows/s of bare COPYs of the same rows (already parsed: the floor of any pipeline),
    one per run, each into a fresh table."""
    rows = []
    for i, obj in enumerate(dossiers(n, prefix="R")):
        rec = parse_dossier(i, obj)
        assert isinstance(rec, DossierRecord)
        rows.append(raw_row(rec))
    conn = await asyncpg.connect(dsn)
    rates = []
    try:
        for _ in range(runs):
            await conn.execute("DROP TABLE IF EXISTS bench_raw")
            await conn.execute(RAW_TABLE)
            started = time.perf_counter()
            for i in range(0, n, batch):
                await conn.copy_records_to_table(
                    "bench_raw", records=rows[i : i + batch], columns=RAW_COLUMNS
                )
            rates.append(n / (time.perf_counter() - started))
        await conn.execute("DROP TABLE bench_raw")
        return rates
    finally:
        await conn.close()


async def pipeline(
    db: Database,
    n: int,
    batch: int,
    source: str,
    prefix: str,
    workers: int = 1,
    progress: int = 0,
    stream: bool = False,
) -> float:
    """Records/s through `ingest_json` (parse, resolve units, COPY, upsert, history), with
    `workers` batches in flight (each its own transaction; they serialise only on the
    ingest lock, so one batch's parsing and COPY overlap another's upsert).

    The records are generated before the clock starts, as the raw COPY's rows are: what is
    timed is the pipeline from records in memory (as a push or a pulled page hands them
    over) to commit. With `stream` (the backfill) they are generated lazily inside the
    timed loop instead, so memory does not grow with `n` (and the rate includes making
    them, ~20 µs per record). With `progress`, prints the RSS every `progress` records."""
    generated = batches(dossiers(n, seed=2, prefix=prefix), batch)
    chunks: Iterator[list[dict[str, Any]]] = generated if stream else iter(list(generated))
    done = 0

    async def worker() -> None:
        nonlocal done
        for chunk in chunks:  # a shared generator: each batch goes to one worker
            async with db.session() as session:
                result = await ingest_json(session, "dossiers", source, chunk, max_records=batch)
            assert not result.rejected, result.rejected[:1]
            before, done = done, done + len(chunk)
            if progress and done // progress > before // progress:
                print(f"  {done:,} records, RSS {rss_mb():,.0f} MB", flush=True)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return n / (time.perf_counter() - started)


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_of(pid: int) -> float:
    """Peak resident set size (VmHWM) of a running process, in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def http_push(
    url: str, token: str, n: int, batch: int, concurrency: int, servers: int
) -> tuple[float, float]:
    """Records/s through `POST /api/v1/ingest/dossiers` of `servers` real `ioc serve`
    processes (replicas on one database, as behind a load balancer; each runs uvicorn with
    uvloop and httptools and every background service), `concurrency` requests in flight,
    spread round-robin; → (rate, the servers' peak RSS in MB)."""
    ports = [free_port() for _ in range(servers)]
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.AsyncClient] = []
    try:
        for port in ports:  # one after the other: the first applies the migrations
            env = {**os.environ, "IOC_DATABASE_URL": url, "IOC_PORT": str(port),
                   "IOC_LOG_LEVEL": "warning", "IOC_RATE_LIMIT_ENABLED": "false"}  # fmt: skip
            procs.append(subprocess.Popen([sys.executable, "-m", "ioc", "serve"], env=env))
            http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120)
            clients.append(http)
            for _ in range(300):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        bodies = [json.dumps(b, ensure_ascii=False).encode()
                  for b in batches(dossiers(n, seed=3, prefix="H"), batch)]  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

        async def worker(http: httpx.AsyncClient) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                r = await http.post("/api/v1/ingest/dossiers?source=bench-http",
                                    content=body, headers=headers)  # fmt: skip
                assert r.status_code == 200 and not r.json()["rejected"], r.text[:300]

        started = time.perf_counter()
        await asyncio.gather(*(worker(clients[i % servers]) for i in range(concurrency)))
        rate = n / (time.perf_counter() - started)
        # The servers' own high-water marks (not RUSAGE_CHILDREN: a child's maxrss counts
        # the benchmark's pages it shared between fork and exec).
        peak = max(peak_rss_of(proc.pid) for proc in procs)
    finally:
        for http in clients:
            await http.aclose()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    return rate, peak


async def backfill_child(url: str, n: int, batch: int) -> None:
    """The backfill, in its own process: 2 batches in flight, RSS every 100k records."""
    db = Database(url, pool_size=4)
    start_rss = rss_mb()
    rate = await pipeline(
        db, n, batch, "bench-backfill", "F", workers=2, progress=max(n // 10, batch), stream=True
    )
    await db.close()
    print(f"backfill {n:,} records (2 batches in flight): {rate:,.0f} records/s")
    print(f"backfill process RSS at start: {start_rss:,.0f} MB")
    print(f"backfill process peak RSS: {peak_rss_mb():,.0f} MB")
    print("BACKFILL_JSON " + json.dumps({"rate": rate, "peak_rss": peak_rss_mb()}))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small sizes (about a minute).")
    parser.add_argument("--records", type=int, help="Records for each measured path.")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--backfill", type=int, help="Records of the constant-memory backfill.")
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP requests in flight.")
    parser.add_argument("--servers", type=int, default=2, help="`ioc serve` replicas.")
    parser.add_argument("--backfill-child", nargs=3, metavar=("URL", "N", "BATCH"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.backfill_child:
        url, count, size = args.backfill_child
        await backfill_child(url, int(count), int(size))
        return
    n = args.records or (50_000 if args.quick else 200_000)
    backfill = args.backfill if args.backfill is not None else (0 if args.quick else 1_000_000)
    server = os.environ.get("IOC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ioc_bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    figures: dict[str, list[Any]] = {}
    try:
        await upgrade(url)
        db = Database(url, pool_size=4)
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
            await load_organs_csv(session, Path(DEMO_ORGANS))
            token, _ = await create_token(session, name="bench", role="collector", unit_code="70")
        print(f"records per path: {n:,}, batch {args.batch:,}")
        runs = await raw_copy(asyncpg_dsn(url), n, args.batch)
        copy_rate = statistics.median(runs)
        print(f"raw COPY runs: {', '.join(f'{r:,.0f}' for r in runs)} rows/s")
        print(f"raw COPY with primary key (median of 3): {copy_rate:,.0f} rows/s")
        pipe_runs = [
            await pipeline(db, n, args.batch, f"bench-pipeline-{k}", f"P{k}") for k in range(3)
        ]
        pipe_rate = statistics.median(pipe_runs)
        print(f"pipeline runs: {', '.join(f'{r:,.0f}' for r in pipe_runs)} records/s")
        print(f"pipeline (ingest_json, new records, median of 3): {pipe_rate:,.0f} records/s")
        print(f"pipeline ratio to raw COPY: {pipe_rate / copy_rate:.2f}")
        again = await pipeline(db, n, args.batch, "bench-pipeline-0", "P0")
        print(f"pipeline (same records again, unchanged): {again:,.0f} records/s")
        two = await pipeline(db, n, args.batch, "bench-pipeline-2", "Q", workers=2)
        print(f"pipeline, 2 batches in flight (new records): {two:,.0f} records/s")
        print(f"pipeline, 2 batches in flight, ratio to raw COPY: {two / copy_rate:.2f}")
        await db.close()
        http_rate, server_rss = await http_push(
            url, token, n, min(args.batch, 10_000), args.concurrency, args.servers
        )
        print(
            f"HTTP push (POST /api/v1/ingest/dossiers, {args.servers} server process(es), "
            f"{args.concurrency} requests in flight): {http_rate:,.0f} records/s"
        )
        print(f"HTTP push ratio to raw COPY: {http_rate / copy_rate:.2f}")
        print(f"server peak RSS: {server_rss:,.0f} MB")
        print(
            f"benchmark peak RSS (holds the raw COPY's rows and the HTTP bodies): "
            f"{peak_rss_mb():,.0f} MB"
        )
        figures = {
            "raw COPY": [round(copy_rate), "rows/s"],
            "pipeline": [round(pipe_rate), "records/s"],
            "pipeline ratio": [round(pipe_rate / copy_rate, 3), "x raw COPY"],
            "pipeline, 2 in flight": [round(two), "records/s"],
            "pipeline, 2 in flight ratio": [round(two / copy_rate, 3), "x raw COPY"],
            "HTTP push": [round(http_rate), "records/s"],
            "HTTP push ratio": [round(http_rate / copy_rate, 3), "x raw COPY"],
            "server peak RSS": [round(server_rss), "MB"],
            "peak RSS": [round(peak_rss_mb()), "MB"],
        }
        if backfill:
            child = subprocess.run(
                [sys.executable, __file__, "--backfill-child", url, str(backfill),
                 str(args.batch)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            print(child.stdout, end="")
            result = json.loads(child.stdout.split("BACKFILL_JSON ", 1)[1])
            figures["backfill"] = [round(result["rate"]), "records/s"]
            figures["backfill peak RSS"] = [round(result["peak_rss"]), "MB"]
        print("BENCH_JSON " + json.dumps({"figures": figures}))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
