"""Run every benchmark of the project and write docs/performance.md (and a PNG plot).

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/run_all.py [--quick] [--only ingest,live]

Each benchmark (benchmarks/ingest.py, kpis.py, live.py, feeds.py, events.py…) is run as its own
process, with the arguments listed in BENCHMARKS (full = the issues' sizes, --quick =
minutes on a laptop). Their standard output is kept verbatim in the report; lines of the
form `name: value unit` and any `ratio` they print are gathered into the summary table;
a benchmark may also print one line `BENCH_JSON {...}` with machine-readable figures
(`{"figures": {name: [value, unit]}, "series": {...}}`), which is preferred when present.

Beside them, this script measures its own raw baselines in the same run, so every figure
of ioc can be read against what the bare parts do on this very machine:
- PostgreSQL: rows/s of a bare asyncpg COPY into an unlogged table with no index;
- websockets: commit-free broadcast latency of a bare `websockets` server to N clients.
The plot `docs/performance-screens.png` shows latency (p50, p99) vs the number of screens,
from live.py's series when it gives one (`--screens-series`), and the bare baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@dataclass
class Benchmark:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    what: str

    def args(self, quick: bool) -> list[str]:
        return self.quick if quick else self.full


# Arguments follow each benchmark's own --help (read when it landed).
BENCHMARKS: list[Benchmark] = [
    Benchmark("ingest", "ingest.py", [], ["--quick"], "collectors: records/s, ratio to raw COPY"),
    Benchmark(
        "kpis",
        "kpis.py",
        [],  # --scale 1.0: the 10M dossiers, 2M reports, 1M documents
        ["--scale", "0.01", "--requests", "50", "--naive", "2", "--batches", "3"],
        "KPI engine: snapshot latency, commit-to-event, beside a naive GROUP BY",
    ),
    Benchmark(
        "live",
        "live.py",
        [],  # 1,000 and 10,000 screens; ioc and bare, with and without permessage-deflate
        ["--screens", "100,300,1000", "--seconds", "10", "--modes", "ioc,bare"],
        "live screens: commit-to-receive latency, CPU and RSS per screen, beside bare",
    ),
    Benchmark(
        "screen",
        "screen.py",
        [],
        ["--screens", "3", "--rounds", "5"],
        "wall screen in Chromium: ingest → tile latency, beside a bare websocket client",
    ),
    Benchmark(
        "screen_views",
        "screen_views.py",
        ["--minutes", "60"],  # the hour of fast events for the page's heap
        ["--rounds", "3", "--minutes", "1"],
        "wall views: first paint, ingest → view, screenshots, the page's heap after a long run",
    ),
    Benchmark(
        "feeds",
        "feeds.py",
        ["--down-seconds", "600"],  # the 10 minutes with the receiver down
        ["--quick"],
        "feeds: deliveries/s, p99 latency, catch-up",
    ),
    Benchmark(
        "federation",
        "federation.py",
        [],
        ["--deliveries", "1000", "--snapshots", "100"],
        "federation: inbox deliveries/s and snapshot time, mirroring to screens on vs off",
    ),
    Benchmark(
        "events",
        "events.py",
        [],
        ["--rounds", "10"],
        "event log: publish a round of 4,200 kpi events, packed vs a row per event; read back",
    ),
]

FIGURE = re.compile(
    r"^\s*(?P<name>[A-Za-z][\w .,/()%<>=\[\]-]{1,80}?)\s*[:=]\s*"
    r"(?P<value>-?[\d][\d,_]*(?:\.\d+)?(?:e[+-]?\d+)?)\s*(?P<unit>[^\s,;]*)",
    re.IGNORECASE,
)


@dataclass
class Result:
    bench: Benchmark
    status: str  # ok, failed, missing, timeout
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    figures: dict[str, tuple[float, str]] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)


def machine(database_url: str | None) -> dict[str, str]:
    """CPU, RAM, OS, Python and PostgreSQL of the machine the figures come from."""
    info: dict[str, str] = {}
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    info["CPU"] = f"{cpu}, {os.cpu_count()} logical CPUs"
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        info["RAM"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        info["RAM"] = "unknown"
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip().strip('"')
                os_name = f"{pretty} (kernel {platform.release()})"
    except OSError:
        pass
    info["OS"] = os_name
    info["Python"] = platform.python_version()
    info["PostgreSQL"] = asyncio.run(_pg_version(database_url)) if database_url else "not given"
    try:
        load = os.getloadavg()
        info["Load at start"] = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"
    except OSError:
        pass
    return info


async def _pg_version(url: str) -> str:
    import asyncpg

    from ioc.db.engine import asyncpg_dsn

    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"unreachable ({exc})"
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def parse_output(stdout: str) -> tuple[dict[str, tuple[float, str]], dict[str, Any]]:
    figures: dict[str, tuple[float, str]] = {}
    parsed: dict[str, tuple[float, str]] = {}
    series: dict[str, Any] = {}
    structured = False
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            try:
                data = json.loads(line[len("BENCH_JSON ") :])
            except ValueError:
                continue
            for name, (value, unit) in data.get("figures", {}).items():
                figures[name] = (float(value), str(unit))
            series.update(data.get("series", {}))
            structured = True
            continue
        match = FIGURE.match(line)
        if match and not line.lstrip().startswith("#"):
            value = float(match["value"].replace(",", "").replace("_", ""))
            parsed.setdefault(match["name"].strip(), (value, match["unit"]))
    # The benchmark's own machine-readable figures win over lines guessed from its text.
    return (figures if structured else parsed), series


def run_benchmark(bench: Benchmark, quick: bool, timeout: float, env: dict[str, str]) -> Result:
    path = ROOT / "benchmarks" / bench.script
    if not path.exists():
        return Result(bench, "missing")
    args = bench.quick if quick else bench.full
    started = time.monotonic()
    print(f"== {bench.name}: {' '.join([bench.script, *args])}", flush=True)
    try:
        proc = subprocess.run(
            [sys.executable, str(path), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Result(bench, "timeout", time.monotonic() - started, out)
    result = Result(
        bench,
        "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})",
        time.monotonic() - started,
        proc.stdout,
        proc.stderr,
    )
    result.figures, result.series = parse_output(proc.stdout)
    print(proc.stdout[-4000:], flush=True)
    if proc.returncode:
        print(proc.stderr[-4000:], file=sys.stderr, flush=True)
    return result


# --- raw baselines, measured here


async def baseline_copy(url: str, rows: int) -> float:
    """Rows/s of a bare COPY into an unlogged, index-free temp table (the PostgreSQL bound)."""
    import asyncpg

    from ioc.db.engine import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "CREATE TEMP TABLE bench_copy (id bigint, unit text, received_at timestamptz, "
            "status smallint, raw jsonb)"
        )
        now = datetime.now(UTC)
        records = [(i, "25432", now, 2, '{"MaHoSo": "x"}') for i in range(rows)]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=records)
        return rows / (time.perf_counter() - started)
    finally:
        await conn.close()


async def baseline_broadcast(clients: int, messages: int) -> dict[str, float]:
    """p50/p99 latency of a bare `websockets` server broadcasting to `clients` sockets held
    by another process (as screens are), wall clock from send to receive."""
    import websockets

    connected: set[Any] = set()

    async def handler(ws: Any) -> None:
        connected.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connected.discard(ws)

    async with websockets.serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--bare-clients",
            f"{clients},{messages},{port}",
            stdout=asyncio.subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while len(connected) < clients and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        for _ in range(messages):
            websockets.broadcast(connected, repr(time.time()))
            await asyncio.sleep(0.2)  # 5/s, as the ioc measurement
        out, _ = await asyncio.wait_for(child.communicate(), timeout=180)
    latencies = sorted(json.loads(out))
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }


async def _bare_clients(clients: int, messages: int, port: int) -> None:
    """The client side of `baseline_broadcast`: prints the latencies as a JSON list."""
    import websockets

    sockets = [
        await websockets.connect(f"ws://127.0.0.1:{port}", compression=None) for _ in range(clients)
    ]
    latencies: list[float] = []

    async def reader(ws: Any) -> None:
        for _ in range(messages):
            sent = float(await ws.recv())
            latencies.append(time.time() - sent)

    await asyncio.wait_for(asyncio.gather(*(reader(ws) for ws in sockets)), timeout=150)
    for ws in sockets:
        await ws.close()
    print(json.dumps(latencies))


async def ioc_screens(server_url: str, counts: list[int], events: int) -> dict[int, Any]:
    """Commit-to-screen latency of a real `ioc serve` vs the number of screens connected.

    A fresh database on `server_url`; one `ioc serve` process; for each N, a separate client
    process opens N websockets subscribed to unit 689, then this process commits `events`
    alert events (5/s) and notes each one's time after COMMIT; the clients note each
    arrival. Same host, same wall clock."""
    import asyncpg

    from ioc.auth import create_token
    from ioc.db import Database, upgrade
    from ioc.db.engine import asyncpg_dsn, with_database
    from ioc.events import NewEvent, publish
    from ioc.units import DEMO_FILES, load_units_csv

    name = f"ioc_bench_screens_{os.getpid()}"
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    proc: subprocess.Popen[bytes] | None = None
    db = Database(url, pool_size=2)
    results: dict[int, Any] = {}
    try:
        await upgrade(url)
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
            token, _ = await create_token(session, name="bench", role="operator", unit_code="70")
        port = _free_port()
        env = {**os.environ, "IOC_DATABASE_URL": url, "IOC_PORT": str(port)}
        env.update(IOC_HOST="127.0.0.1", IOC_MIGRATE_ON_START="false", IOC_LOG_LEVEL="warning")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioc", "serve"], env=env, stdout=subprocess.DEVNULL
        )
        await _wait_http(f"http://127.0.0.1:{port}/healthz")
        for n in counts:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--ioc-clients",
                f"{n},{events + 3},{port},{token}",
                stdout=asyncio.subprocess.PIPE,
            )
            assert child.stdout is not None
            ready = await asyncio.wait_for(child.stdout.readline(), timeout=300)
            assert ready.strip() == b"ready", ready
            committed: dict[int, float] = {}
            warm_up = 3  # the first events of each round warm the path up: not counted
            for k in range(events + warm_up):
                async with db.session() as session:
                    alert = {"alert": {"rule": f"bench-{k}", "unit": "689", "state": "firing"}}
                    event = NewEvent(type="alert", unit_code="689", subject="bench", payload=alert)
                    (seq,) = await publish(session, [event])
                if k >= warm_up:
                    committed[seq] = time.time()
                await asyncio.sleep(0.2)
            out, _ = await asyncio.wait_for(child.communicate(), timeout=300)
            arrivals: dict[str, list[float]] = json.loads(out)
            latencies = sorted(
                t - committed[int(seq)]
                for seq, ts in arrivals.items()
                if int(seq) in committed
                for t in ts
            )
            expected = n * events
            results[n] = {
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
                "received": len(latencies),
                "expected": expected,
            }
            print(f"ioc, {n} screens: {json.dumps(results[n])}", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return results


async def _ioc_clients(n: int, events: int, port: int, token: str) -> None:
    """The client side of `ioc_screens`: prints `ready`, then the arrivals as JSON."""
    import websockets

    async def screen() -> Any:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}", max_size=None)
        await ws.send(json.dumps({"type": "subscribe", "unit": "689", "windows": ["today"]}))
        while json.loads(await ws.recv())["type"] != "snapshot":
            pass
        return ws

    sockets = []
    for start in range(0, n, 50):  # open in slices: a burst of handshakes is not the point
        sockets += await asyncio.gather(*(screen() for _ in range(min(50, n - start))))
    arrivals: dict[str, list[float]] = {}
    print("ready", flush=True)

    async def reader(ws: Any) -> None:
        got = 0
        while got < events:
            message = json.loads(await ws.recv())
            if message["type"] == "alert":
                arrivals.setdefault(str(message["seq"]), []).append(time.time())
                got += 1

    # On a timeout, report what arrived: the parent counts what is missing.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(reader(ws) for ws in sockets)), timeout=240)
    for ws in sockets:
        await ws.close()
    print(json.dumps(arrivals), flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_http(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


# --- report


LIVE_LINE = re.compile(
    r"^(?P<mode>[\w-]+)\[(?P<n>\d+)\]\.latency_(?P<q>p50|p99): (?P<v>[\d.]+) ms", re.MULTILINE
)


def screens_series(results: list[Result]) -> dict[str, dict[int, dict[str, float]]]:
    """Latency vs screens from live.py: its `mode[N].latency_p50: X ms` lines, one curve
    per mode (ioc, ioc-deflate, bare, bare-deflate)."""
    curves: dict[str, dict[int, dict[str, float]]] = {}
    for result in results:
        if result.bench.name != "live":
            continue
        for m in LIVE_LINE.finditer(result.stdout):
            point = curves.setdefault(f"live.py {m['mode']}", {}).setdefault(int(m["n"]), {})
            point[f"{m['q']}_ms"] = float(m["v"])
    return {
        label: {n: p for n, p in curve.items() if {"p50_ms", "p99_ms"} <= set(p)}
        for label, curve in curves.items()
    }


Curve = dict[int, dict[str, float]]


def plot(path: Path, curves: dict[str, Curve]) -> bool:
    """Latency (p50 solid, p99 dashed) vs screens, one colour per curve; False without
    matplotlib (the `bench` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install '.[bench]'): no plot", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colours = ["C0", "grey", "C1", "C2", "C3", "C4", "C5", "C6"]
    for (label, curve), colour in zip(curves.items(), colours, strict=False):
        xs = sorted(curve)
        ax.plot(xs, [curve[x]["p50_ms"] for x in xs], "o-", color=colour, label=f"{label} p50")
        ax.plot(xs, [curve[x]["p99_ms"] for x in xs], "o--", color=colour, label=f"{label} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("screens connected")
    ax.set_ylabel("commit/send → received (ms)")
    ax.set_title("Event latency vs number of screens")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _load_warning(info: dict[str, str]) -> list[str]:
    """A note when the machine was busy: absolute figures are then pessimistic, ratios to
    the baselines of the same run stay meaningful."""
    try:
        load = float(info.get("Load at start", "0").split()[0])
    except ValueError:
        return []
    cpus = os.cpu_count() or 1
    if load <= cpus:
        return []
    return [
        f"**The machine was busy** (load {load:.1f} on {cpus} CPUs when the run started: "
        "other work shared it). Absolute figures are pessimistic and vary between runs; "
        "compare each figure with the baseline measured beside it in the same run.",
        "",
    ]


HISTORY = "\n## How the figures came about, room by room\n"


def write_report(
    path: Path,
    info: dict[str, str],
    results: list[Result],
    baselines: dict[str, Any],
    curves: dict[str, Curve],
    plotted: str | None,
    quick: bool,
) -> None:
    lines = [
        "# Performance",
        "",
        "Written by `benchmarks/run_all.py` "
        f"({'--quick sizes' if quick else 'full sizes of the issues'}) on "
        f"{datetime.now(UTC).isoformat(timespec='minutes')}. Re-run it to refresh this page; "
        "figures from another machine are not comparable.",
        "",
        *_load_warning(info),
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        "## Raw baselines (measured in the same run)",
        "",
        "| baseline | figure |",
        "|---|---|",
        f"| bare asyncpg COPY into a temp table, {baselines['copy_rows']:,} rows | "
        f"{_fmt(baselines['copy_rows_per_s'])} rows/s |",
    ]
    lines.append("| bare `websockets` broadcast (another process) | see the screens table |")
    lines += ["", "## Summary", "", "| benchmark | status | time | figures |", "|---|---|---|---|"]
    for r in results:
        shown = "; ".join(
            f"{k}: {_fmt(v)} {u}".strip() for k, (v, u) in list(r.figures.items())[:8]
        )
        lines.append(f"| {r.bench.name} | {r.status} | {r.seconds:.0f} s | {shown or '—'} |")
    ingest = next((r for r in results if r.bench.name == "ingest" and r.figures), None)
    if ingest:
        rates = {k: v for k, (v, u) in ingest.figures.items() if "/s" in u or "per s" in k}
        if rates:
            lines += ["", "Ingest against the bare COPY of this run:", ""]
            for k, v in rates.items():
                lines.append(f"- {k}: {v / baselines['copy_rows_per_s']:.2%} of bare COPY")
    lines += ["", "## Latency vs number of screens", ""]
    lines += [
        "Commit of an event → arrival on every screen, for a real `ioc serve` (screens in",
        "another process, 20 alert events at 5/s, subscribed to unit 689), beside a bare",
        "`websockets` server broadcasting 20 messages at 5/s to as many clients (send → arrival).",
        "",
        "| screens | ioc p50 | ioc p99 | received | bare p50 | bare p99 | ioc p99 / bare p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    ioc_curve, bare = curves.get("ioc", {}), curves.get("bare websockets", {})
    for n in sorted(set(ioc_curve) | set(bare)):
        i, b = ioc_curve.get(n, {}), bare.get(n, {})
        ratio = i["p99_ms"] / b["p99_ms"] if i and b and b["p99_ms"] else float("nan")
        got = f"{i.get('received', 0):,.0f}/{i.get('expected', 0):,.0f}" if i else "—"
        lines.append(
            f"| {n:,} | {i.get('p50_ms', float('nan')):.1f} ms | "
            f"{i.get('p99_ms', float('nan')):.1f} ms | {got} | "
            f"{b.get('p50_ms', float('nan')):.1f} ms | {b.get('p99_ms', float('nan')):.1f} ms | "
            f"{ratio:.1f}× |"
        )
    if plotted:
        lines += ["", f"![latency vs screens]({plotted})"]
    for r in results:
        lines += ["", f"## {r.bench.name} — {r.bench.what}", ""]
        if r.status == "missing":
            lines.append(f"`benchmarks/{r.bench.script}` does not exist yet: not run.")
            continue
        command = " ".join([f"python benchmarks/{r.bench.script}", *r.bench.args(quick)])
        lines += [
            f"`{command}` — {r.status}, {r.seconds:.0f} s",
            "",
            "```",
            r.stdout.strip() or "(no output)",
            "```",
        ]
        if r.status != "ok" and r.stderr.strip():
            lines += ["", "Last lines of its standard error:", "", "```"]
            lines += r.stderr.strip().splitlines()[-15:]
            lines.append("```")
    # The hand-kept history at the end of the page (the rooms' measurements and how their
    # choices were made) is not regenerated: carry it over from the page being replaced.
    if path.exists():
        old = path.read_text(encoding="utf-8")
        start = old.find(HISTORY)
        if start >= 0:
            lines += ["", old[start:].rstrip()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    parser.add_argument("--out", type=Path, default=DOCS / "performance.md")
    parser.add_argument("--plot", type=Path, default=DOCS / "performance-screens.png")
    parser.add_argument(
        "--database-url", default=os.environ.get("IOC_DATABASE_URL"), help="PostgreSQL server"
    )
    parser.add_argument("--bare-clients", help=argparse.SUPPRESS)
    parser.add_argument("--ioc-clients", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ioc_clients:
        n, events, port, token = args.ioc_clients.split(",")
        asyncio.run(_ioc_clients(int(n), int(events), int(port), token))
        return
    if args.bare_clients:
        clients, messages, port = (int(x) for x in args.bare_clients.split(","))
        asyncio.run(_bare_clients(clients, messages, port))
        return
    wanted = {n for n in args.only.split(",") if n}
    env = dict(os.environ)
    if args.database_url:
        env["IOC_DATABASE_URL"] = args.database_url
    info = machine(args.database_url)
    print(json.dumps(info, indent=1), flush=True)

    copy_rows = 200_000 if args.quick else 1_000_000
    baselines: dict[str, Any] = {"copy_rows": copy_rows, "broadcast": {}}
    if args.database_url:
        baselines["copy_rows_per_s"] = asyncio.run(baseline_copy(args.database_url, copy_rows))
    else:
        baselines["copy_rows_per_s"] = float("nan")
    counts = [10, 100, 300] if args.quick else [10, 100, 1000]
    for clients in counts:
        baselines["broadcast"][clients] = asyncio.run(baseline_broadcast(clients, 20))
    print(json.dumps(baselines, indent=1), flush=True)
    curves: dict[str, Curve] = {}
    if args.database_url:
        curves["ioc"] = asyncio.run(ioc_screens(args.database_url, counts, 20))
    curves["bare websockets"] = baselines["broadcast"]

    results = [
        run_benchmark(b, args.quick, args.timeout, env)
        for b in BENCHMARKS
        if not wanted or b.name in wanted
    ]
    curves.update(screens_series(results))
    plotted = None
    if plot(args.plot, curves):
        plotted = os.path.relpath(args.plot, args.out.parent)
    write_report(args.out, info, results, baselines, curves, plotted, args.quick)
    print(f"wrote {args.out}" + (f" and {args.plot}" if plotted else ""))


if __name__ == "__main__":
    main()
