"""Feed delivery benchmark: N subscriptions on 127.0.0.1 receivers, a steady event rate.

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/feeds.py [--quick] [--subscriptions 100] [--rate 20]
            [--seconds 20] [--down-seconds 60] [--backlog 0]

Creates and drops its own database on that server, runs the real `DeliveryService` (with
its PostgreSQL listener) in this process, and real HTTP receivers (asyncio streams) on
127.0.0.1. Every event (one `kpi` event for unit 689) matches every subscription.

Prints:
- deliveries/s during the steady phase (N subscriptions × rate events/s offered);
- commit-to-delivery latency p50/p99 (publisher's clock after COMMIT → receiver's clock when
  the request arrives; same host, same clock);
- catch-up: one receiver is down for --down-seconds while the rate continues (plus an
  optional --backlog burst); when it returns, events/s at which its backlog drains.
The issue asks for 10 minutes down (`--down-seconds 600`); the default is 60 s so a run
takes about two minutes; `--quick` is 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.db import Database, upgrade  # noqa: E402
from ioc.db.engine import asyncpg_dsn, with_database  # noqa: E402
from ioc.events import NewEvent, publish  # noqa: E402
from ioc.events.listener import Listener  # noqa: E402
from ioc.feeds import DeliveryService  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.units import DEMO_FILES, load_units_csv  # noqa: E402
from tests.feeds.receiver import Received, Receiver  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def event(i: int) -> NewEvent:
    return NewEvent(
        type="kpi",
        unit_code="689",
        time_window="today",
        subject="dossier_online_rate",
        payload={
            "unit": "689",
            "window": "today",
            "as_of": "2026-11-27T10:00:00+07:00",
            "kpi": {
                "id": "dossier_online_rate",
                "value": i / 1000,
                "numerator": i,
                "denominator": 1000,
                "target": 0.5,
                "status": "ok",
            },
        },
    )


class Bench:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.db = Database(url, pool_size=4)
        self.committed: dict[int, float] = {}
        self.latencies: list[float] = []
        self.first_seen: dict[tuple[int, int], float] = {}

    async def publish_one(self, i: int) -> int:
        async with self.db.session() as session:
            seqs = await publish(session, [event(i)])
        self.committed[seqs[0]] = time.time()
        return seqs[0]

    async def steady(self, seconds: float, rate: float, start: int = 0) -> list[int]:
        """Publish `rate` events/s for `seconds` on a fixed schedule (no drift)."""
        seqs: list[int] = []
        t0 = time.monotonic()
        n = int(seconds * rate)
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            seqs.append(await self.publish_one(start + i))
        return seqs


def make_observer(bench: Bench, index: int, measure: dict[str, bool]):  # type: ignore[no-untyped-def]
    def observe(request: Received) -> None:
        seq = json.loads(request.body)["seq"]
        key = (index, seq)
        if key in bench.first_seen:
            return
        bench.first_seen[key] = request.at
        if measure["on"] and seq in bench.committed:
            bench.latencies.append(request.at - bench.committed[seq])

    return observe


async def run(args: argparse.Namespace) -> None:
    server = os.environ.get("IOC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ioc_bench_feeds_{os.getpid()}"
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    listener = Listener(asyncpg_dsn(url))
    service: DeliveryService | None = None
    receivers: list[Receiver] = []
    bench = Bench(args, url)
    try:
        await upgrade(url)
        async with bench.db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
        measure = {"on": False}
        for i in range(args.subscriptions):
            receiver = Receiver(status=204)
            receiver.on_receive = make_observer(bench, i, measure)
            await receiver.start()
            receivers.append(receiver)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            for receiver in receivers:
                await conn.execute(
                    "INSERT INTO feed_subscriptions (id, unit_code, url, topics, secret, "
                    "cursor_seq, created_by) VALUES ($1, '689', $2, ARRAY['kpi'], $3, 0, 'bench')",
                    uuid.uuid4(),
                    receiver.url,
                    "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=",
                )
        finally:
            await conn.close()
        settings = Settings(
            database_url=url,
            webhooks_allow_private=True,
            feeds_loop_seconds=0.5,
            feeds_retry_base_seconds=0.5,
            feeds_retry_max_seconds=2.0,
            feeds_db_pool_size=args.pool,
        )
        service = DeliveryService(settings, asyncpg_dsn(url), listener=listener)
        listener.start()
        service.start()
        await asyncio.wait_for(listener.connected.wait(), 10)

        # --- warm-up: every worker delivers one event
        warm = await bench.publish_one(-1)
        await wait_all(bench, range(len(receivers)), [warm], 60)

        # --- steady phase
        measure["on"] = True
        t0 = time.monotonic()
        seqs = await bench.steady(args.seconds, args.rate)
        await wait_all(bench, range(len(receivers)), seqs, 120)
        elapsed = time.monotonic() - t0
        measure["on"] = False
        deliveries = len(seqs) * len(receivers)
        lat = bench.latencies
        print(f"subscriptions: {len(receivers)}")
        print(f"offered event rate: {args.rate:g} events/s for {args.seconds:g} s")
        print(f"deliveries per second: {deliveries / elapsed:.0f} deliveries/s")
        print(f"commit-to-delivery p50: {percentile(lat, 50) * 1000:.1f} ms")
        print(f"commit-to-delivery p99: {percentile(lat, 99) * 1000:.1f} ms")
        print(f"commit-to-delivery max: {max(lat) * 1000:.1f} ms")

        # --- catch-up: receiver 0 down while the rate continues
        down = receivers[0]
        await down.stop()
        t_down = time.monotonic()
        backlog = await bench.steady(args.down_seconds, args.rate, start=100_000)
        if args.backlog:
            async with bench.db.session() as session:
                backlog += await publish(session, [event(i) for i in range(args.backlog)])
        while time.monotonic() - t_down < args.down_seconds:
            await asyncio.sleep(0.1)
        # the worker is in backoff (≤ feeds_retry_max_seconds): the clock starts when the
        # endpoint is back, so the figure includes the wait for the next retry
        await down.start()
        t_up = time.monotonic()
        await wait_all(bench, [0], backlog, 600)
        drain = time.monotonic() - t_up
        arrivals = sorted(bench.first_seen[(0, s)] for s in backlog)
        wall_up = time.time() - drain
        print(f"first backlog delivery after return: {arrivals[0] - wall_up:.2f} s")
        spread = max(arrivals[-1] - arrivals[0], 1e-6)
        print(f"backlog drain, first to last delivery: {spread:.2f} s")
        print(f"catch-up drain rate: {len(backlog) / spread:.0f} events/s")
        print(f"receiver down: {args.down_seconds:g} s, backlog {len(backlog)} events")
        print(f"catch-up time: {drain:.2f} s")
        print(f"catch-up rate: {len(backlog) / drain:.0f} events/s")
        wanted = set(backlog)
        ordered = [s for s in down.seqs() if s in wanted]
        dedup = [s for k, s in enumerate(ordered) if k == 0 or s != ordered[k - 1]]
        print(f"# catch-up delivered in order: {dedup == backlog}")
        figures = {
            "deliveries_per_second": [round(deliveries / elapsed), "deliveries/s"],
            "commit_to_delivery_p99_ms": [round(percentile(lat, 99) * 1000, 1), "ms"],
            "catchup_events_per_second": [round(len(backlog) / drain), "events/s"],
            "catchup_drain_events_per_second": [round(len(backlog) / spread), "events/s"],
        }
        print("BENCH_JSON " + json.dumps({"figures": figures}))
    finally:
        if service is not None:
            await service.stop()
        await listener.stop()
        for receiver in receivers:
            await receiver.stop()
        await bench.db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def wait_all(
    bench: Bench, indexes: range | list[int], seqs: list[int], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    wanted = [(i, s) for i in indexes for s in seqs]
    while True:
        wanted = [key for key in wanted if key not in bench.first_seen]
        missing = len(wanted)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{missing} deliveries missing after {timeout} s")
        await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="events/s offered")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady phase")
    parser.add_argument("--down-seconds", type=float, default=60.0, help="receiver down")
    parser.add_argument("--backlog", type=int, default=0, help="extra events while down")
    parser.add_argument("--pool", type=int, default=10, help="delivery DB pool size")
    parser.add_argument("--quick", action="store_true", help="10 s steady, 15 s down")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.down_seconds = 10.0, 15.0
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
