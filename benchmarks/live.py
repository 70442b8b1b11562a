"""Live-screens benchmark: N screens on one `ioc serve`, a steady event rate, and the same
screens on a bare `websockets` broadcast server measured in the same run (the ceiling).

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/live.py [--screens 1000,10000] [--rate 10] [--seconds 20]
        [--clients 2] [--modes ioc,ioc-deflate,bare,bare-deflate]

For each mode and N it prints: latency p50/p99 (from just before the event's transaction
to its arrival on a screen, every screen counted; also from the moment the writer's commit
returned, which leaves out the writer's own INSERT and fsync), messages/s delivered, events
missed, server CPU (% of one core over the steady phase) and server RSS per idle screen;
each figure also as a ratio to the bare `websockets` server of the same run. Modes `storm`
and `bare-storm` cut every screen at once and time their reconnection (with `since`).
Screens run in `--clients` separate processes on 127.0.0.1. Creates and drops its own
database on that server. Prints `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KPI_IDS = [f"bench_kpi_{i}" for i in range(13)]
COMMITS: list[tuple[float, int]] = []  # the driver's (stamp → commit seconds, event index)
COMMIT_DELAY: dict[int, float] = {}  # seq → the driver's stamp → commit returned, seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the screens (run in child processes: `live.py screens ...`)


async def screens_main(args: argparse.Namespace) -> None:
    import websockets

    latencies: list[float] = []
    latency_seqs: list[int] = []  # the seq of each latency
    seqs_seen: list[set[int]] = [set() for _ in range(args.n)]
    earliest: dict[int, float] = {}  # seq -> earliest arrival latency on any screen
    errors: dict[str, int] = {}
    connected = 0
    ready = asyncio.Event()
    gate = asyncio.Semaphore(100)  # connection attempts in flight

    async def screen(i: int) -> None:
        nonlocal connected
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        try:
            async with gate:
                ws = await websockets.connect(
                    args.url,
                    additional_headers=headers,
                    compression="deflate" if args.deflate else None,
                    open_timeout=120,
                    ping_interval=None,
                    max_size=None,
                )
                await ws.send(json.dumps({"type": "subscribe", "unit": "70", "windows": ["today"]}))
                if not args.bare:
                    first = json.loads(await asyncio.wait_for(ws.recv(), 120))
                    assert first["type"] == "snapshot", first
        except Exception as exc:  # counted and reported, the run goes on
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        connected += 1
        if connected == args.n:
            ready.set()
        seen = seqs_seen[i]

        async def heartbeat() -> None:  # the server closes clients silent for 90 s
            while True:
                await asyncio.sleep(20)
                await ws.send('{"type":"ping"}')

        beat = asyncio.create_task(heartbeat())
        try:
            # no per-message timeout: a wait_for per recv would cost a task per message
            async for raw in ws:
                now = time.time()
                if raw.startswith('{"type":"kpi"'):
                    message = json.loads(raw)
                    latency = now - message["kpi"]["t"]
                    latencies.append(latency)
                    seq = message["seq"]
                    latency_seqs.append(seq)
                    seen.add(seq)
                    if latency < earliest.get(seq, 1e9):
                        earliest[seq] = latency
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            key = "dropped:" + type(exc).__name__
            errors[key] = errors.get(key, 0) + 1
        finally:
            beat.cancel()
            with contextlib.suppress(Exception):
                await ws.close()

    tasks = [asyncio.create_task(screen(i)) for i in range(args.n)]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    waited = 0.0
    while not ready.is_set() and waited < 300 and connected + sum(errors.values()) < args.n:
        await asyncio.sleep(0.2)
        waited += 0.2
    gc.collect()  # the screens' own pauses are not the server's latency
    gc.freeze()
    print(json.dumps({"ready": connected, "errors": errors}), flush=True)
    await reader.readline()  # the orchestrator says: measure from now
    latencies.clear()
    latency_seqs.clear()
    earliest.clear()
    for s in seqs_seen:
        s.clear()
    await reader.readline()  # ... and stop
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    union = set().union(*seqs_seen) if seqs_seen else set()
    print(
        json.dumps(
            {
                "latencies": latencies,
                "latency_seqs": latency_seqs,
                "received": len(latencies),
                "per_screen_counts": sorted({len(s) for s in seqs_seen})[:5],
                "union": sorted(union),
                "earliest": earliest,
                "errors": errors,
            }
        ),
        flush=True,
    )


# --- the reconnect storm (child processes: `live.py storm ...`)


async def storm_main(args: argparse.Namespace) -> None:
    """N screens that, on "drop", all lose their connection at the same instant (transport
    aborted: a network cut) and reconnect at once, without backoff, resuming with `since`."""
    import websockets

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    errors: dict[str, int] = {}
    sockets: list[Any] = [None] * args.n
    last_seq = [0] * args.n  # highest seq seen (events and pings): the `since` to resume from
    seen: list[list[int]] = [[] for _ in range(args.n)]  # kpi seqs received while recording
    reopened: list[float | None] = [None] * args.n  # drop → socket open again
    recovered: list[float | None] = [None] * args.n  # drop → first event after reconnecting
    snapshots_after_drop = 0
    recording = False
    dropped_at: float | None = None
    connected = 0
    ready = asyncio.Event()
    gate = asyncio.Semaphore(args.gate)  # connection attempts in flight, per process

    def count(key: str) -> None:
        errors[key] = errors.get(key, 0) + 1

    async def screen(i: int) -> None:
        nonlocal connected, snapshots_after_drop
        first = True
        while True:
            try:
                async with gate:
                    ws = await websockets.connect(
                        args.url,
                        additional_headers=headers,
                        compression=None,
                        open_timeout=300,
                        ping_interval=None,
                        max_size=None,
                    )
                subscribe: dict[str, Any] = {
                    "type": "subscribe",
                    "unit": "70",
                    "windows": ["today"],
                }
                if not first:
                    subscribe["since"] = last_seq[i]
                await ws.send(json.dumps(subscribe))
            except Exception as exc:  # refused or timed out: counted, retried
                count(type(exc).__name__)
                await asyncio.sleep(0.1 + random.random() * 0.4)
                continue
            if dropped_at is not None and not first:
                reopened[i] = time.monotonic() - dropped_at
            sockets[i] = ws
            if first:
                first = False
                connected += 1
                if connected == args.n:
                    ready.set()
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message["type"]
                    seq = message.get("seq", 0)
                    if kind == "kpi":
                        if recording:
                            seen[i].append(seq)
                        if dropped_at is not None and recovered[i] is None:
                            recovered[i] = time.monotonic() - dropped_at
                    elif kind == "snapshot" and dropped_at is not None:
                        snapshots_after_drop += 1
                    last_seq[i] = max(last_seq[i], seq)
            except asyncio.CancelledError:
                return
            except Exception as exc:
                if dropped_at is None:
                    count("dropped:" + type(exc).__name__)
            finally:
                sockets[i] = None

    tasks = [asyncio.create_task(screen(i)) for i in range(args.n)]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    waited = 0.0
    while not ready.is_set() and waited < 300:
        await asyncio.sleep(0.2)
        waited += 0.2
    gc.collect()  # the screens' own pauses are not the server's latency
    gc.freeze()
    print(json.dumps({"ready": connected, "errors": errors}), flush=True)
    await reader.readline()  # go: record from now
    recording = True
    await reader.readline()  # drop: every connection cut at the same instant
    dropped_at = time.monotonic()
    for ws in sockets:
        if ws is not None:
            ws.transport.abort()
    published = set(json.loads(await reader.readline()))  # stop, with what was published
    # ... once every screen has reconnected and caught up (or two minutes have passed; the
    # bare server does not resume, so its screens are only given a few seconds)
    target = max(published, default=0)
    for _ in range(30 if args.bare else 1200):
        if all(seq >= target for seq in last_seq):
            break
        await asyncio.sleep(0.1)
    caught_up = all(seq >= target for seq in last_seq)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    missed = sum(len(published - set(s)) for s in seen)
    duplicates = sum(len(s) - len(set(s)) for s in seen)
    out_of_order = sum(any(a >= b for a, b in itertools.pairwise(s)) for s in seen)
    print(
        json.dumps(
            {
                "reopened": [t for t in reopened if t is not None],
                "recovered": [t for t in recovered if t is not None],
                "not_recovered": sum(t is None for t in recovered),
                "lagging_at_stop": 0 if caught_up else sum(seq < target for seq in last_seq),
                "missed": missed,
                "duplicates": duplicates,
                "out_of_order_screens": out_of_order,
                "snapshots_after_drop": snapshots_after_drop,
                "errors": errors,
            }
        ),
        flush=True,
    )


# --- the bare ceiling: websockets.broadcast to every subscriber


async def bare_main(args: argparse.Namespace) -> None:
    import websockets
    from websockets.asyncio.server import broadcast, serve

    screens: set[Any] = set()

    async def handler(ws: Any) -> None:
        role = json.loads(await ws.recv())
        if role.get("type") == "publish":
            async for message in ws:
                broadcast(screens, message)
            return
        screens.add(ws)
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass  # a screen dropped (the storm cuts them all)
        finally:
            screens.discard(ws)

    compression = "deflate" if args.deflate else None
    async with serve(handler, "127.0.0.1", args.port, compression=compression, max_size=None):
        print("bare ready", flush=True)
        await asyncio.Future()


# --- the orchestrator


async def setup_database(server_url: str) -> tuple[str, str]:
    from ioc.auth import create_token
    from ioc.db import Database, upgrade
    from ioc.db.engine import asyncpg_dsn, with_database
    from ioc.kpis import run_round
    from ioc.units import DEMO_FILES, load_units_csv

    name = f"ioc_bench_live_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = with_database(server_url, name)
    await upgrade(url)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
        async with db.session() as session:
            await run_round(session)
        async with db.session() as session:
            token, _ = await create_token(session, name="bench", role="operator", unit_code="70")
    finally:
        await db.close()
    return url, token


async def drop_database(server_url: str, url: str) -> None:
    from ioc.db.engine import asyncpg_dsn, with_database

    name = url.rsplit("/", 1)[1].split("?")[0]
    conn = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def start_server(mode: str, url: str, port: int) -> subprocess.Popen[bytes]:
    if mode.startswith("bare"):
        cmd = [sys.executable, __file__, "bare", "--port", str(port)]
        if mode.endswith("deflate"):
            cmd.append("--deflate")
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    env = {
        **os.environ,
        "IOC_DATABASE_URL": url,
        "IOC_MIGRATE_ON_START": "false",
        "IOC_ALERTS_ENABLED": "false",
        "IOC_FEEDS_ENABLED": "false",
        "IOC_RATE_LIMIT_ENABLED": "false",
        "IOC_LOG_LEVEL": "warning",
        "IOC_WS_COMPRESSION": "true" if mode.endswith("deflate") else "false",
    }
    impl = WS_IMPLS.get(mode)
    if impl is None:
        cmd = [sys.executable, "-m", "ioc", "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:  # the same app under another uvicorn websocket implementation
        cmd = [sys.executable, "-c", _SERVE_WITH_IMPL, impl, str(port)]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


# `ioc-sansio` / `ioc-websockets` / `ioc-wsproto`: the same app under uvicorn's stock
# websocket implementations (`ioc serve` runs its own, `ioc.live.server`: uvicorn's
# `websockets-sansio` plus the `ioc.websocket.direct` extension). Under them every message
# takes the queue and ASGI path: `ioc-sansio` is the fan-out without the direct write.
WS_IMPLS = {
    "ioc-sansio": "websockets-sansio",
    "ioc-websockets": "websockets",
    "ioc-wsproto": "wsproto",
}
_SERVE_WITH_IMPL = """
import sys, uvicorn
from ioc.app import create_app
from ioc.settings import Settings
uvicorn.run(create_app(Settings()), host="127.0.0.1", port=int(sys.argv[2]), ws=sys.argv[1],
            log_config=None, ws_max_size=64 * 1024, ws_per_message_deflate=False)
"""


async def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def drive_ioc(url: str, rate: float, seconds: float) -> list[int]:
    """Publish kpi events for unit 70 at `rate` per second; each carries its send time."""
    from ioc.db import Database
    from ioc.events import NewEvent, publish

    db = Database(url, pool_size=1)
    seqs: list[int] = []
    COMMITS.clear()
    COMMIT_DELAY.clear()
    # A full collection of this process's objects (SQLAlchemy, the app's modules) takes
    # ~50 ms; between an event's stamp and its commit it would count as server latency.
    # The driver's objects are frozen out of the collector for the run.
    gc.collect()
    gc.freeze()
    try:
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < seconds:
            kpi = KPI_IDS[i % len(KPI_IDS)]
            stamped = time.monotonic()
            async with db.session() as session:
                event = NewEvent(
                    type="kpi",
                    unit_code="70",
                    time_window="today",
                    subject=kpi,
                    payload={
                        "unit": "70",
                        "window": "today",
                        "as_of": None,
                        "kpi": {"id": kpi, "value": i, "status": "ok", "t": time.time()},
                    },
                )
                [seq] = await publish(session, [event])
            seqs.append(seq)
            COMMITS.append((time.monotonic() - stamped, i))  # stamp → committed, in the driver
            COMMIT_DELAY[seq] = COMMITS[-1][0]
            i += 1
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
    finally:
        await db.close()
    return seqs


async def drive_bare(port: int, rate: float, seconds: float) -> list[int]:
    import websockets

    seqs: list[int] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        await ws.send(json.dumps({"type": "publish"}))
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < seconds:
            i += 1
            kpi = KPI_IDS[i % len(KPI_IDS)]
            await ws.send(
                json.dumps(
                    {
                        "type": "kpi",
                        "seq": i,
                        "unit": "70",
                        "window": "today",
                        "as_of": None,
                        "kpi": {"id": kpi, "value": i, "status": "ok", "t": time.time()},
                    },
                    separators=(",", ":"),
                )
            )
            seqs.append(i)
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
    return seqs


def fanout_histogram(port: int) -> str:
    """The server's `ioc_live_fanout_delay_seconds` (transaction start → fan-out), as
    cumulative `le=count` pairs: separates the database/wake-up path from the fan-out."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    pairs = []
    for line in body.splitlines():
        if line.startswith("ioc_live_fanout_delay_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            pairs.append(f"{le}={float(line.rsplit(' ', 1)[1]):.0f}")
    return " ".join(pairs)


async def spawn_client(cmd: list[str]) -> asyncio.subprocess.Process:
    """One screens/storm client process, talking to us over its stdin and stdout."""
    return await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 30,
        cwd=ROOT,
    )


async def hellos(clients: list[asyncio.subprocess.Process]) -> tuple[int, dict[str, int]]:
    """Each client's first line: screens connected, and connection errors by kind."""
    connected, errors = 0, {}
    for c in clients:
        assert c.stdout is not None
        hello = json.loads(await c.stdout.readline())
        connected += hello["ready"]
        for k, v in hello["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return connected, errors


def stop(clients: list[asyncio.subprocess.Process], server: subprocess.Popen[bytes]) -> None:
    """Kill the client processes still running, then stop the server (SIGTERM, then KILL)."""
    for c in clients:
        if c.returncode is None:
            c.kill()
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


async def run_one(
    mode: str, n: int, args: argparse.Namespace, url: str, token: str
) -> dict[str, Any]:
    port = free_port()
    server = start_server(mode, url, port)
    clients: list[asyncio.subprocess.Process] = []
    try:
        await wait_port(port, server)
        ps = psutil.Process(server.pid)
        await asyncio.sleep(1.0)
        rss_before = ps.memory_info().rss
        per = [n // args.clients + (1 if i < n % args.clients else 0) for i in range(args.clients)]
        ws_url = f"ws://127.0.0.1:{port}/" + ("" if mode.startswith("bare") else "ws")
        for count in per:
            cmd = [sys.executable, __file__, "screens", "--url", ws_url, "--n", str(count)]
            if not mode.startswith("bare"):
                cmd += ["--token", token]
            else:
                cmd.append("--bare")
            if mode.endswith("deflate"):
                cmd.append("--deflate")
            clients.append(await spawn_client(cmd))
        connected, errors = await hellos(clients)
        await asyncio.sleep(2.0)  # settle
        rss_idle = ps.memory_info().rss
        for c in clients:
            assert c.stdin is not None
            c.stdin.write(b"go\n")
            await c.stdin.drain()
        cpu0 = sum(ps.cpu_times()[:2])
        t0 = time.monotonic()
        if mode.startswith("bare"):
            published = await drive_bare(port, args.rate, args.seconds)
        else:
            published = await drive_ioc(url, args.rate, args.seconds)
        await asyncio.sleep(3.0)  # let the last events arrive
        elapsed = time.monotonic() - t0
        cpu = (sum(ps.cpu_times()[:2]) - cpu0) / elapsed
        rss_end = ps.memory_info().rss
        fanout = "" if mode.startswith("bare") else fanout_histogram(port)
        latencies: list[float] = []
        from_commit: list[float] = []  # latency minus the driver's own stamp → commit
        union: set[int] = set()
        earliest: dict[str, float] = {}
        for c in clients:
            assert c.stdin is not None and c.stdout is not None
            c.stdin.write(b"stop\n")
            await c.stdin.drain()
            result = json.loads(await c.stdout.readline())
            latencies += result["latencies"]
            from_commit += [
                latency - COMMIT_DELAY.get(seq, 0.0)
                for latency, seq in zip(result["latencies"], result["latency_seqs"], strict=True)
            ]
            union |= set(result["union"])
            for seq, latency in result["earliest"].items():
                earliest[seq] = min(latency, earliest.get(seq, latency))
            for k, v in result["errors"].items():
                errors[k] = errors.get(k, 0) + v
            await c.wait()
        expected = connected * len(published)
        latencies.sort()

        def pct(p: float, values: list[float] = latencies) -> float:
            return values[min(len(values) - 1, int(p * len(values)))] * 1000

        firsts = sorted(earliest.values())
        from_commit.sort()
        COMMIT_DELAY.clear()
        # the slowest events by first arrival: when in the run (s after the first event)
        index = {str(seq): i for i, seq in enumerate(published)}
        slowest = sorted(earliest.items(), key=lambda kv: -kv[1])[:3]
        slow_events = ", ".join(
            f"{kv[1] * 1000:.0f} ms at {index.get(kv[0], -1) / args.rate:.1f} s" for kv in slowest
        )
        if COMMITS:  # the driver's own share: stamp → commit returned
            slow_commits = sorted(COMMITS, reverse=True)[:3]
            slow_events += "; slowest commits (driver): " + ", ".join(
                f"{d * 1000:.0f} ms at {i / args.rate:.1f} s" for d, i in slow_commits
            )
            COMMITS.clear()

        return {
            "mode": mode,
            "screens": n,
            "connected": connected,
            "p50_ms": pct(0.50) if latencies else float("nan"),
            "p99_ms": pct(0.99) if latencies else float("nan"),
            "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
            # earliest arrival of each event on any screen: commit + wake-up + read, no fan-out
            "first_p50_ms": pct(0.50, firsts) if firsts else float("nan"),
            "first_p99_ms": pct(0.99, firsts) if firsts else float("nan"),
            "slow_events": slow_events,
            "commit_p50_ms": pct(0.50, from_commit) if from_commit else float("nan"),
            "commit_p99_ms": pct(0.99, from_commit) if from_commit else float("nan"),
            "delivered_per_s": len(latencies) / elapsed,
            "received": len(latencies),
            "expected": expected,
            "missed": expected - len(latencies),
            "events_never_seen": len(set(published) - union),
            "cpu_pct": cpu * 100,
            # CPU per message delivered: the fan-out's cost, meaningful even on a busy node
            # where latency measures the scheduler more than the server
            "cpu_ms_per_1000": cpu * elapsed / max(1, len(latencies)) * 1e6,
            "rss_per_screen_kb": (rss_idle - rss_before) / max(1, connected) / 1024,
            "rss_growth_steady_mb": (rss_end - rss_idle) / 2**20,
            "errors": errors,
            "fanout": fanout,
        }
    finally:
        stop(clients, server)


async def run_storm(
    mode: str, n: int, args: argparse.Namespace, url: str, token: str
) -> dict[str, Any]:
    """Every screen drops at the same instant a third of the way through the steady phase
    and reconnects at once with `since`; events keep coming meanwhile."""
    bare = mode.startswith("bare")
    port = free_port()
    server = start_server("bare" if bare else "ioc", url, port)
    clients: list[asyncio.subprocess.Process] = []
    try:
        await wait_port(port, server)
        ps = psutil.Process(server.pid)
        per = [n // args.clients + (1 if i < n % args.clients else 0) for i in range(args.clients)]
        ws_url = f"ws://127.0.0.1:{port}/" + ("" if bare else "ws")
        for count in per:
            cmd = [sys.executable, __file__, "storm", "--url", ws_url, "--n", str(count)]
            cmd += ["--gate", str(max(1, args.storm_gate // args.clients))]
            cmd += ["--bare"] if bare else ["--token", token]
            clients.append(await spawn_client(cmd))
        connected, errors = await hellos(clients)
        await asyncio.sleep(2.0)

        async def tell(line: bytes) -> None:
            for c in clients:
                assert c.stdin is not None
                c.stdin.write(line)
                await c.stdin.drain()

        await tell(b"go\n")
        if bare:
            driver = asyncio.create_task(drive_bare(port, args.rate, args.seconds))
        else:
            driver = asyncio.create_task(drive_ioc(url, args.rate, args.seconds))
        await asyncio.sleep(max(2.0, args.seconds / 3))
        cpu0 = sum(ps.cpu_times()[:2])
        t0 = time.monotonic()
        await tell(b"drop\n")
        published = await driver
        await asyncio.sleep(5.0)  # let the last resumes and events arrive
        elapsed = time.monotonic() - t0
        cpu = (sum(ps.cpu_times()[:2]) - cpu0) / elapsed
        await tell((json.dumps(published) + "\n").encode())
        reopened: list[float] = []
        recovered: list[float] = []
        totals = {"not_recovered": 0, "missed": 0, "duplicates": 0, "out_of_order_screens": 0}
        totals["snapshots_after_drop"] = totals["lagging_at_stop"] = 0
        for c in clients:
            assert c.stdout is not None
            result = json.loads(await c.stdout.readline())
            reopened += result["reopened"]
            recovered += result["recovered"]
            for k in totals:
                totals[k] += result[k]
            for k, v in result["errors"].items():
                errors[k] = errors.get(k, 0) + v
            await c.wait()
        reopened.sort()
        recovered.sort()

        def pct(values: list[float], p: float) -> float:
            if not values:
                return float("nan")
            return values[min(len(values) - 1, int(p * len(values)))] * 1000

        return {
            "mode": mode,
            "screens": n,
            "connected": connected,
            "events": len(published),
            "reopen_p50_ms": pct(reopened, 0.5),
            "reopen_max_ms": pct(reopened, 1.0),
            "recovered_p50_ms": pct(recovered, 0.5),
            "recovered_p99_ms": pct(recovered, 0.99),
            "recovered_max_ms": pct(recovered, 1.0),
            "cpu_pct": cpu * 100,
            "expected": connected * len(published),
            **totals,
            "errors": errors,
        }
    finally:
        stop(clients, server)


def print_storm(r: dict[str, Any]) -> None:
    key = f"{r['mode']}[{r['screens']}]"
    print(f"{key}.connected: {r['connected']} screens, {r['events']} events published")
    print(
        f"{key}.reopened_after_drop p50/max: {r['reopen_p50_ms']:.0f} / {r['reopen_max_ms']:.0f} ms"
    )
    print(
        f"{key}.recovered_after_drop p50/p99/max: {r['recovered_p50_ms']:.0f} / "
        f"{r['recovered_p99_ms']:.0f} / {r['recovered_max_ms']:.0f} ms "
        f"(drop -> first event after reconnecting; {r['not_recovered']} never recovered)"
    )
    print(f"{key}.screens_not_caught_up_2_min_after_the_last_event: {r['lagging_at_stop']}")
    print(f"{key}.missed: {r['missed']} of {r['expected']} messages")
    print(
        f"{key}.duplicates: {r['duplicates']}; screens out of order: "
        f"{r['out_of_order_screens']}; snapshots after the drop: {r['snapshots_after_drop']}"
    )
    print(f"{key}.server_cpu_during_storm: {r['cpu_pct']:.0f} % of one core")
    if r["errors"]:
        print(f"{key}.errors: {r['errors']}")
    sys.stdout.flush()


def print_ratios(n: int, results: dict[str, dict[str, Any]]) -> None:
    """Each ioc mode against its bare baseline of the same run (same clients, same rate)."""
    pairs = [("ioc", "bare"), ("ioc-deflate", "bare-deflate"), ("storm", "bare-storm")]
    figures = {
        "latency_p50": "p50_ms",
        "latency_p99": "p99_ms",
        "server_cpu": "cpu_pct",
        "server_cpu_per_message": "cpu_ms_per_1000",
        "rss_per_screen": "rss_per_screen_kb",
        "recovered_max": "recovered_max_ms",
        "reopened_max": "reopen_max_ms",
    }
    for mine, bare in pairs:
        if mine not in results or bare not in results:
            continue
        for name, field in figures.items():
            a, b = results[mine].get(field), results[bare].get(field)
            if a is not None and b and a == a and b == b:  # present, non-zero, not NaN
                print(f"{mine}[{n}].{name}_vs_{bare}: {a / b:.2f} x")
    sys.stdout.flush()


async def orchestrate(args: argparse.Namespace) -> None:
    server_url = os.environ.get("IOC_DATABASE_URL")
    if not server_url:
        sys.exit("set IOC_DATABASE_URL to a PostgreSQL server (a database is created there)")
    url, token = await setup_database(server_url)
    print(
        f"# cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}  rate: {args.rate}/s  "
        f"steady: {args.seconds}s  client processes: {args.clients}"
    )
    try:
        for n in [int(x) for x in args.screens.split(",")]:
            results: dict[str, dict[str, Any]] = {}
            for mode in args.modes.split(","):
                if mode.endswith("storm"):
                    results[mode] = await run_storm(mode, n, args, url, token)
                    print_storm(results[mode])
                    continue
                r = results[mode] = await run_one(mode, n, args, url, token)
                key = f"{r['mode']}[{n}]"
                print(f"{key}.connected: {r['connected']} screens")
                print(f"{key}.latency_p50: {r['p50_ms']:.1f} ms")
                print(f"{key}.latency_p99: {r['p99_ms']:.1f} ms")
                print(f"{key}.latency_max: {r['max_ms']:.1f} ms")
                print(
                    f"{key}.first_screen_latency_p50/p99: "
                    f"{r['first_p50_ms']:.1f} / {r['first_p99_ms']:.1f} ms"
                )
                print(f"{key}.delivered: {r['delivered_per_s']:.0f} messages/s")
                print(f"{key}.missed: {r['missed']} of {r['expected']} messages")
                print(f"{key}.server_cpu: {r['cpu_pct']:.0f} % of one core")
                print(f"{key}.server_cpu_per_1000_messages: {r['cpu_ms_per_1000']:.2f} ms")
                print(f"{key}.server_rss_per_screen: {r['rss_per_screen_kb']:.1f} KB")
                print(f"{key}.server_rss_growth_steady: {r['rss_growth_steady_mb']:.1f} MB")
                if not mode.startswith("bare"):
                    print(
                        f"{key}.latency_from_commit_returned_p50/p99: "
                        f"{r['commit_p50_ms']:.1f} / {r['commit_p99_ms']:.1f} ms"
                    )
                print(f"{key}.slowest_events_first_screen: {r['slow_events']}")
                if r["fanout"]:
                    print(f"{key}.fanout_delay_histogram: {r['fanout']}")
                if r["errors"]:
                    print(f"{key}.errors: {r['errors']}")
                sys.stdout.flush()
            print_ratios(n, results)
    finally:
        await drop_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    scr = sub.add_parser("screens")
    scr.add_argument("--url", required=True)
    scr.add_argument("--token", default=None)
    scr.add_argument("--n", type=int, required=True)
    scr.add_argument("--deflate", action="store_true")
    scr.add_argument("--bare", action="store_true")
    storm = sub.add_parser("storm")
    storm.add_argument("--url", required=True)
    storm.add_argument("--token", default=None)
    storm.add_argument("--n", type=int, required=True)
    storm.add_argument("--gate", type=int, default=500)
    storm.add_argument("--bare", action="store_true")
    bare = sub.add_parser("bare")
    bare.add_argument("--port", type=int, required=True)
    bare.add_argument("--deflate", action="store_true")
    parser.add_argument("--screens", default="1000,10000")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--modes",
        default="ioc,ioc-deflate,bare,bare-deflate",
        help="also: storm, bare-storm (every screen drops at once and reconnects), "
        "ioc-sansio, ioc-websockets, ioc-wsproto (uvicorn's stock websocket "
        "implementations: no direct write)",
    )
    parser.add_argument(
        "--storm-gate",
        type=int,
        default=1000,
        help="storm: connection attempts in flight at once, over all client processes",
    )
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.cmd == "screens":
        runner(screens_main(args))
    elif args.cmd == "storm":
        runner(storm_main(args))
    elif args.cmd == "bare":
        runner(bare_main(args))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
