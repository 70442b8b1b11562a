"""The simulator: deterministic, realistic, and everything it serves is taken in."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from ioc.collectors.pull import poll
from ioc.collectors.simserver import create_sim_app, demo_sources, push_forever
from ioc.collectors.simulator import World
from ioc.db import Database

from ..conftest import DatabaseFactory, ServerMaker, TokenMaker
from .factories import fetch, value

START = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)


def world(**kw: object) -> World:
    return World(seed=11, start=START, clock=lambda: START, backfill_days=10,
                 backfill_per_day=60, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_same_seed_same_records_and_time_moves_them() -> None:
    a, b = world(rate=0.5), world(rate=0.5)
    assert a.logs == b.logs
    assert World(seed=12, start=START, clock=lambda: START, backfill_days=10,
                 backfill_per_day=60).logs != a.logs  # fmt: skip
    before = len(a.logs["dossiers"])
    a.advance(START + timedelta(hours=6))
    b.advance(START + timedelta(hours=6))
    assert a.logs == b.logs and len(a.logs["dossiers"]) > before
    latest = {d["MaHoSo"]: d for d in a.logs["dossiers"]}
    statuses = Counter(int(d["TrangThaiHoSo"]) for d in latest.values())
    assert statuses[10] > statuses[4] > 0  # most of 10 days are finished, some still open
    names = {d["TenTTHC"] for d in latest.values()}
    assert "Đăng ký khai sinh" in names


async def test_everything_served_is_ingested(databases: DatabaseFactory) -> None:
    """Pull every feed through the real HTTP app: no dead-letters, counts match the logs."""
    url = await databases.create()
    db = Database(url, pool_size=2)
    conn = await db.connect_raw()
    try:
        # the demo's extra organ ids for districts (as `prepare_demo` loads them)
        w = world(rate=0.0)
        for organ, code in w.organs.items():
            await conn.execute(
                "INSERT INTO organs VALUES ($1, $2, 'sim') ON CONFLICT DO NOTHING", organ, code
            )
        transport = httpx.ASGITransport(app=create_sim_app(w))
        async with httpx.AsyncClient(transport=transport) as client:
            for source in demo_sources("http://sim"):
                await poll(db, client, source, max_pages=1000)
        assert await value(db, "SELECT count(*) FROM dead_letters") == 0
        expect = {
            feed: len({_key(feed, i) for i in w.logs[feed]} - {None})
            for feed in ("dossiers", "reports", "procedures", "documents")
        }
        got = {
            "dossiers": await value(db, "SELECT count(*) FROM dossiers"),
            "reports": await value(db, "SELECT count(*) FROM reports"),
            "procedures": await value(db, "SELECT count(*) FROM procedures"),
            "documents": await value(db, "SELECT count(*) FROM documents"),
        }
        assert got == expect
        rows = await fetch(
            db,
            "SELECT count(*) FILTER (WHERE channel = 2)::float / count(*) AS online FROM dossiers",
        )
        assert 0.3 < rows[0]["online"] < 0.7
        # the real shapes the simulator sends carry what the 766 indicators read
        facts = (await fetch(db, """
            SELECT count(*) FILTER (WHERE supplement_count > 0) AS supplemented,
                   count(*) FILTER (WHERE supplement_count > 1) AS twice,
                   count(*) FILTER (WHERE due_moved_at IS NOT NULL) AS moved,
                   count(*) FILTER (WHERE fee_total > 0) AS fees,
                   count(*) FILTER (WHERE paid_online_code IN (1, 2)) AS paid,
                   count(*) FILTER (WHERE e_result) AS e_result,
                   count(*) FILTER (WHERE data_reused) AS reused,
                   count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
                   count(*) FILTER (WHERE NOT accepted) AS waiting
            FROM dossiers"""))[0]  # fmt: skip
        assert all(v > 0 for v in facts.values()), dict(facts)
        assert await value(db, "SELECT count(*) FROM reports WHERE rating IS NOT NULL") > 0
        assert await value(db, "SELECT count(*) FROM procedures WHERE legal_days > 0") > 0
    finally:
        await conn.close()
        await db.close()


def _key(feed: str, item: object) -> object:
    if feed == "dossiers":
        return item["MaHoSo"]  # type: ignore[index]
    if feed == "reports":
        return item["id"]  # type: ignore[index]
    if feed == "procedures":
        return (item["MaTTHC"], item["MaDonVi"])  # type: ignore[index]
    text = str(item)
    return text.split("<edXML:DocumentId>")[1].split("<")[0] if "MessageHeader" in text else None


async def test_push_mode_reaches_a_server(
    make_server: ServerMaker, make_token: TokenMaker, db: Database
) -> None:
    """`ioc simulate --push`: the same records arrive through the ingest endpoints."""
    server = await make_server()
    token = await make_token("collector", "70")
    w = World(seed=5, rate=0.0, start=START, clock=lambda: START, backfill_days=2,
              backfill_per_day=40)  # fmt: skip
    conn = await db.connect_raw()
    try:
        for organ, code in w.organs.items():
            await conn.execute(
                "INSERT INTO organs VALUES ($1, $2, 'sim') ON CONFLICT DO NOTHING", organ, code
            )
    finally:
        await conn.close()
    expected = len({d["MaHoSo"] for d in w.logs["dossiers"]})
    pusher = asyncio.create_task(push_forever(w, server.url, token, interval=0.1))
    try:
        for _ in range(400):
            got = await value(db, "SELECT count(*) FROM dossiers WHERE source = 'sim-dossiers' "
                              "AND source_id = ANY($1::text[])",
                              [d["MaHoSo"] for d in w.logs["dossiers"]])  # fmt: skip
            if got == expected:
                break
            await asyncio.sleep(0.05)
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
    assert got == expected
    assert await value(
        db, "SELECT count(*) FROM dead_letters WHERE source LIKE 'sim-%'"
    ) == 0  # fmt: skip
