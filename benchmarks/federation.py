"""Federation benchmark: what mirroring upstream KPIs onto the district's screens costs.

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/federation.py [--deliveries 2000] [--snapshots 300]

Creates and drops its own database on that server (demo units loaded). Two figures, each
as a ratio against its baseline measured in the same run:
- the inbox (`ioc.federation.service.receive`, signature check included, one transaction
  per delivery as the route does): signed `kpi` deliveries per second with
  `IOC_FEDERATION_KPIS=local` (the baseline: store only) and `upstream` (store and publish
  a local `kpi` event); every delivery carries a newer value, so every one publishes;
- a screen's snapshot of 689 (`ioc.live.snapshot.build_snapshot`, all five windows, 689
  and its 8 communes): without the overlay (the baseline) and with it, the upstream
  having sent every KPI of every window for those 9 units.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.db import Database, upgrade  # noqa: E402
from ioc.db.engine import asyncpg_dsn, with_database  # noqa: E402
from ioc.federation.service import receive  # noqa: E402
from ioc.kpis import CATALOGUE  # noqa: E402
from ioc.live.snapshot import build_snapshot  # noqa: E402
from ioc.localtime import WINDOWS  # noqa: E402
from ioc.units import DEMO_FILES, load_units_csv  # noqa: E402
from ioc.webhooks import new_secret, signature_headers  # noqa: E402

UNITS = ["689", "25195", "25198", "25201", "25204", "25205", "25207", "25210", "25213"]


def delivery(
    secret: str, seq: int, unit: str, window: str, kpi: str
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {
            "type": "kpi",
            "seq": seq,
            "unit": unit,
            "data": {
                "unit": unit,
                "window": window,
                "as_of": "2026-11-27T10:00:00+07:00",
                "kpi": {
                    "id": kpi,
                    "value": seq / 1e6,
                    "numerator": seq,
                    "denominator": 1e6,
                    "target": 0.5,
                    "status": "ok",
                },
            },
        }
    ).encode()
    return signature_headers([secret], f"msg_bench_{seq}", body), body


async def inbox_rate(db: Database, secret: str, n: int, *, mirror: bool, start: int) -> float:
    kpis = list(CATALOGUE)
    t0 = time.perf_counter()
    for i in range(n):
        headers, body = delivery(secret, start + i, "689", "today", kpis[i % len(kpis)])
        async with db.session() as session:
            await receive(session, secret, headers, body, mirror=mirror, scope_unit="689")
    return n / (time.perf_counter() - t0)


async def snapshot_ms(db: Database, n: int, *, mirror: bool) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        async with db.sessionmaker() as session:
            await build_snapshot(session, "689", list(WINDOWS), mirror=mirror)
    return (time.perf_counter() - t0) / n * 1000


async def run(args: argparse.Namespace) -> None:
    server = os.environ.get("IOC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ioc_bench_fed_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    db = Database(url, pool_size=2)
    try:
        await upgrade(url)
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
        secret = new_secret()
        # Warm-up (connections, statement caches), then alternate the two modes twice so a
        # neighbour's load hits both alike.
        await inbox_rate(db, secret, 100, mirror=True, start=1)
        seq = 1_000
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(2):
            for mirror in (False, True):
                rates[mirror].append(
                    await inbox_rate(db, secret, args.deliveries // 2, mirror=mirror, start=seq)
                )
                seq += args.deliveries
        base, mirrored = sum(rates[False]) / 2, sum(rates[True]) / 2
        print(f"inbox_store_only: {base:.0f} deliveries/s  (IOC_FEDERATION_KPIS=local)")
        print(f"inbox_mirrored: {mirrored:.0f} deliveries/s  (upstream: + a local kpi event)")
        print(f"inbox_mirrored_ratio: {mirrored / base:.2f} x the store-only rate")
        # The upstream has sent every KPI of every window for 689 and its communes.
        for unit in UNITS:
            for window in WINDOWS:
                for kpi in CATALOGUE:
                    headers, body = delivery(secret, seq, unit, window, kpi)
                    seq += 1
                    async with db.session() as session:
                        await receive(session, secret, headers, body)
        await snapshot_ms(db, 20, mirror=True)
        plain = await snapshot_ms(db, args.snapshots, mirror=False)
        overlaid = await snapshot_ms(db, args.snapshots, mirror=True)
        print(f"snapshot_local: {plain:.2f} ms  (689, 5 windows, children)")
        print(f"snapshot_overlay: {overlaid:.2f} ms  (every value overlaid by the upstream's)")
        print(f"snapshot_overlay_ratio: {overlaid / plain:.2f} x the local-only build")
    finally:
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000, help="per mode, two rounds")
    parser.add_argument("--snapshots", type=int, default=300, help="builds per mode")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
