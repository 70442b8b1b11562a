"""Alert evaluation and delivery benchmark (prints figures; not a test).

    IOC_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/alerts.py [--rules 200] [--rounds 21] [--quick]

Creates and drops its own database on that server, loads the demo province (70) and:
1. creates --rules rules "each child of 70" (11 districts each → rules × 11 alerts), spread
   over the rate KPIs and windows;
2. publishes, per round, one `kpi` event for every (KPI, district, window) the rules watch,
   alternating breaching and healthy values, and times `evaluate_round` (the evaluator's
   whole transaction: read events, decide, persist, history, outbox, live events);
3. drains the outbox with the real sender into a real SMTP server (aiosmtpd) on 127.0.0.1,
   grouping per recipient (each rule has one of 20 recipients).

Prints `name: value unit` lines (gathered by benchmarks/run_all.py) and BENCH_JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ioc.alerts.evaluator import evaluate_round  # noqa: E402
from ioc.alerts.models import RuleIn  # noqa: E402
from ioc.alerts.rules import create_rule  # noqa: E402
from ioc.alerts.sender import send_round  # noqa: E402
from ioc.db import Database, upgrade  # noqa: E402
from ioc.db.engine import asyncpg_dsn, with_database  # noqa: E402
from ioc.events import NewEvent, publish  # noqa: E402
from ioc.settings import Settings  # noqa: E402
from ioc.units import DEMO_FILES, load_units_csv  # noqa: E402
from tests.conftest import free_port  # noqa: E402

KPIS = [
    "dossier_online_rate",
    "dossier_ontime_rate",
    "dossier_digitized_rate",
    "report_ontime_rate",
    "document_electronic_rate",
]
WINDOWS = ["today", "month"]
DISTRICTS = [str(c) for c in range(688, 699)]


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        return "250 OK"


async def main(args: argparse.Namespace) -> None:
    server_url = os.environ.get("IOC_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
    name = f"ioc_bench_alerts_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(with_database(server_url, "postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    db = Database(url, pool_size=4)
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    try:
        await upgrade(url)
        async with db.session() as session:
            for path in DEMO_FILES:
                await load_units_csv(session, Path(path))
        async with db.session() as session:
            for i in range(args.rules):
                await create_rule(
                    session,
                    RuleIn(
                        name=f"rule {i}",
                        kpi=KPIS[i % len(KPIS)],
                        unit="70",
                        each_child=True,
                        window=WINDOWS[(i // len(KPIS)) % len(WINDOWS)],
                        op="<",
                        threshold=0.5 + (i % 7) / 100,
                        clear_threshold=0.6,
                        severity="warning",
                        recipients=[{"channel": "email", "to": f"head{i % 20}@example.vn"}],
                        repeat_seconds=0,
                    ),
                    scope_unit=None,
                    created_by="bench",
                    allow_private=True,
                )
        keys = [(k, d, w) for k in KPIS for d in DISTRICTS for w in WINDOWS]
        # As a started server does (settings.gc_freeze_on_start): without it, one full
        # collection over this process's heap lands inside the timed drain.
        gc.collect()
        gc.freeze()
        eval_seconds: list[float] = []
        transitions = notifications = events = 0
        now = datetime.now(UTC)
        for r in range(args.rounds):
            value = 0.3 if r % 2 == 0 else 0.9  # fire, resolve, fire…
            async with db.session() as session:
                await publish(
                    session,
                    [
                        NewEvent(
                            "kpi",
                            {
                                "unit": d,
                                "window": w,
                                "as_of": now.isoformat(),
                                "kpi": {
                                    "id": k,
                                    "value": value,
                                    "numerator": None,
                                    "denominator": None,
                                    "target": 0.5,
                                    "status": "bad",
                                },
                            },
                            unit_code=d,
                            time_window=w,
                            subject=k,
                        )
                        for k, d, w in keys
                    ],
                )
            started = time.perf_counter()
            async with db.session() as session:
                result = await evaluate_round(
                    session, now + timedelta(seconds=r), recompute=False, batch=10_000
                )
            eval_seconds.append(time.perf_counter() - started)
            transitions += result.transitions
            notifications += result.notifications
            events += result.events
        alerts = args.rules * len(DISTRICTS)
        total = sum(eval_seconds)
        print(f"rules: {args.rules} rules ({alerts} alerts)")
        print(f"kpi events per round: {len(keys)} events")
        print(f"evaluation round p50: {sorted(eval_seconds)[len(eval_seconds) // 2] * 1000:.0f} ms")
        print(f"alert transitions: {transitions / total:.0f} transitions/s")
        print(f"alerts evaluated: {alerts * args.rounds / total:.0f} alerts/s")
        print(f"outbox rows written: {notifications} rows")

        controller.start()
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=controller.port,
            alerts_group_wait_seconds=0,
            webhooks_allow_private=True,
        )
        started = time.perf_counter()
        sent = messages = 0
        async with httpx.AsyncClient() as client:
            while True:
                round_ = await send_round(
                    db, settings, client, datetime.now(UTC) + timedelta(hours=1)
                )
                if not round_.messages and not round_.skipped:
                    break
                sent += round_.sent
                messages += len(round_.messages)
        drain = time.perf_counter() - started
        print(f"notifications delivered: {sent / drain:.0f} notifications/s")
        print(f"emails sent: {sink.count} emails ({messages} grouped messages for {sent} rows)")
        print(
            "BENCH_JSON "
            + json.dumps(
                {
                    "figures": {
                        "alerts evaluated": [round(alerts * args.rounds / total), "alerts/s"],
                        "alert transitions": [round(transitions / total), "transitions/s"],
                        "alert notifications delivered": [round(sent / drain), "notifications/s"],
                    }
                }
            )
        )
    finally:
        if getattr(controller, "server", None) is not None:
            controller.stop()
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=21, help="odd: ends firing")
    parser.add_argument("--quick", action="store_true", help="20 rules, 7 rounds")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.rules, parsed.rounds = 20, 7
    asyncio.run(main(parsed))
