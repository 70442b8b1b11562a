"""Pull collectors against real local HTTP sources that fail: exact final counts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from ioc.collectors.pull import Retry, SourceFailed, poll, source_health
from ioc.db import Database
from ioc.settings import CollectorSource

from ..conftest import DatabaseFactory, ServerMaker
from .factories import dossier, fetch, new_source, value
from .sources import FaultySource

FAST = Retry(attempts=3, base_seconds=0.01, max_seconds=0.05)


def items(n: int, bad: dict[int, dict[str, object]] | None = None) -> list[dict[str, object]]:
    out = [dossier(f"PULL-{i:04d}", KenhThucHien=1 + i % 2) for i in range(n)]
    for i, fields in (bad or {}).items():
        out[i].update(fields)
    return out


def config(name: str, url: str, **kw: object) -> CollectorSource:
    return CollectorSource(name=name, kind="dossiers", url=url, **kw)  # type: ignore[arg-type]


async def test_faults_are_retried_and_counts_are_exact(db: Database) -> None:
    faults = {1: "500", 2: "timeout", 4: "garbage", 6: "dup", 8: "503"}
    records = items(250, {60: {"MaDonVi": "99998"}, 120: {"TrangThaiHoSo": 0}})
    name = new_source()
    async with FaultySource(records, faults.get) as src, httpx.AsyncClient() as client:
        source = config(name, src.url, page_size=50, timeout_seconds=0.5)
        # a page that does not advance the cursor ends the round; the next round goes on
        pages = [await poll(db, client, source, retry=FAST) for _ in range(2)]
        served = src.served
    assert served == [
        "500", "timeout", "page", "garbage", "page", "dup", "page", "503", "page", "page",
    ]  # fmt: skip
    assert pages == [3, 3]  # 5 pages + the duplicate one, stored idempotently
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", name) == 248
    assert await value(
        db, "SELECT count(DISTINCT change_seq) FROM dossiers WHERE source = $1", name
    ) == 248  # fmt: skip
    assert await value(
        db, "SELECT count(*) FROM dossier_history h JOIN dossiers d ON d.id = h.dossier_id "
        "WHERE d.source = $1", name,
    ) == 248  # fmt: skip
    letters = await fetch(
        db, "SELECT record_id, times_seen FROM dead_letters WHERE source = $1 ORDER BY id", name
    )
    assert [tuple(r) for r in letters] == [("PULL-0060", 2), ("PULL-0120", 1)]
    cursor = await fetch(
        db, "SELECT cursor, records_total, consecutive_failures, last_error "
        "FROM source_cursors WHERE source = $1", name,
    )  # fmt: skip
    assert tuple(cursor[0]) == ("250", 300, 0, None)
    # nothing new: one more round stores one empty page and changes nothing
    async with FaultySource(records) as src, httpx.AsyncClient() as client:
        source = config(name, src.url, page_size=50)
        assert await poll(db, client, source, retry=FAST) == 1
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", name) == 248


async def test_a_dead_source_is_recorded_and_shown(db: Database) -> None:
    name = new_source()
    async with FaultySource([], lambda n: "503") as src, httpx.AsyncClient() as client:
        source = config(name, src.url)
        for _ in range(2):
            with pytest.raises(SourceFailed, match="http_error: HTTP 503"):
                await poll(db, client, source, retry=FAST)
        assert src.requests == 6
    health = await source_health(db, [source])
    detail = health["sources"][name]
    assert (detail["status"], detail["consecutive_failures"], detail["last_error"]) == (
        "failing", 2, "http_error: HTTP 503",
    )  # fmt: skip
    assert health["ok"] is True


async def test_server_polls_configured_sources(make_server: ServerMaker, db: Database) -> None:
    name = new_source()
    async with FaultySource(items(120), {2: "500"}.get) as src:
        source = config(
            name, src.url, page_size=40, interval_seconds=0.2, auth_header="Bearer s3cret"
        )
        server = await make_server(collectors=[source])
        for _ in range(200):
            if await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", name) == 120:
                break
            await asyncio.sleep(0.05)
        assert src.auth == {"Bearer s3cret"}
        async with httpx.AsyncClient(base_url=server.url) as http:
            ready = (await http.get("/readyz")).json()
            scraped = (await http.get("/metrics")).text
    detail = ready["checks"]["collectors"]["sources"][name]
    assert (detail["status"], detail["records_total"]) == ("ok", 120)
    assert (
        f'ioc_ingest_records_total{{feed="dossiers",outcome="inserted",source="{name}"}} 120.0'
        in scraped
    )
    assert f'ioc_collector_fetches_total{{outcome="http_error",source="{name}"}} 1.0' in scraped


@pytest.mark.slow
async def test_collector_killed_between_pages_loses_and_duplicates_nothing(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = await databases.create()
    db = Database(url, pool_size=2)
    records = items(200)
    try:
        async with FaultySource(records, delay=0.25) as src:
            cfg = tmp_path / "ioc.toml"
            cfg.write_text(
                "[[collectors]]\n"
                f'name = "killed"\nkind = "dossiers"\nurl = "{src.url}"\n'
                "page_size = 20\ninterval_seconds = 0.1\n"
            )
            env = {**os.environ, "IOC_DATABASE_URL": url, "IOC_CONFIG": str(cfg)}
            cmd = [sys.executable, "-m", "ioc", "collect"]
            proc = await asyncio.create_subprocess_exec(*cmd, env=env)
            for _ in range(600):
                cursor = await value(
                    db, "SELECT cursor FROM source_cursors WHERE source = 'killed'"
                )
                if cursor is not None and int(cursor) >= 60:
                    break
                await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
            cursor = await value(db, "SELECT cursor FROM source_cursors WHERE source = 'killed'")
            stored = await value(db, "SELECT count(*) FROM dossiers WHERE source = 'killed'")
            # the page and its cursor commit together: never one without the other
            assert 60 <= int(cursor) < 200 and stored == int(cursor)
            again = await asyncio.create_subprocess_exec(*cmd, "--once", env=env)
            assert await asyncio.wait_for(again.wait(), 60) == 0
        row = await fetch(
            db, "SELECT cursor, records_total FROM source_cursors WHERE source = 'killed'"
        )
        assert tuple(row[0]) == ("200", 200)
        assert await value(db, "SELECT count(*) FROM dossiers WHERE source = 'killed'") == 200
        assert await value(
            db, "SELECT count(*) FROM dossier_history h JOIN dossiers d ON d.id = h.dossier_id "
            "WHERE d.source = 'killed'",
        ) == 200  # fmt: skip
    finally:
        await db.close()


async def test_records_the_database_would_refuse_are_dead_lettered(db: Database) -> None:
    """A NUL (or lone surrogate, NaN) inside a pulled record once failed its whole page on
    every retry (the cursor never moved); now only that record is dead-lettered."""
    records = items(
        40,
        {
            3: {"ChuHoSo": "Nguyễn\u0000Văn A"},
            7: {"MaHoSo": "PULL-\u00007", "GhiChu": {"x": ["ok", "\ud800"]}},
            11: {"extra": float("nan")},
            12: {"Ten\u0000": 1},
        },
    )
    name = new_source()
    async with FaultySource(records) as src, httpx.AsyncClient() as client:
        source = config(name, src.url, page_size=20)
        assert await poll(db, client, source, retry=FAST) == 2
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", name) == 36
    letters = await fetch(
        db, "SELECT record_id, reasons::text FROM dead_letters WHERE source = $1 ORDER BY id", name
    )
    assert [(r["record_id"], json.loads(r["reasons"])) for r in letters] == [
        ("PULL-0003", ["ChuHoSo: contains a NUL character (\\u0000), which cannot be stored"]),
        (
            "PULL-\\u00007",
            [
                "MaHoSo: contains a NUL character (\\u0000), which cannot be stored",
                "GhiChu.x[1]: contains a lone UTF-16 surrogate (not valid Unicode text)",
            ],
        ),
        ("PULL-0011", ["extra: nan is not a finite number (JSON has no NaN/Infinity)"]),
        (
            "PULL-0012",
            ["record: a field name contains a NUL character (\\u0000), which cannot be stored"],
        ),
    ]
    cursor = await value(db, "SELECT cursor FROM source_cursors WHERE source = $1", name)
    assert cursor == "40"


async def test_pulled_real_shapes_placed_by_the_sources_organ(db: Database) -> None:
    """A source whose records name no unit (a plain-array one-stop system, a Hue-S export
    pulled per organ) is configured with its organ (`madonvi`)."""
    sample = json.loads(
        (
            Path(__file__).resolve().parents[1] / "samples" / "dvcqg-hagiang-tuyensinh.json"
        ).read_text(encoding="utf-8")
    )
    name = new_source()
    async with FaultySource(sample) as src, httpx.AsyncClient() as client:
        await poll(db, client, config(name, src.url, madonvi="000.21.17.H10"), retry=FAST)
    assert await value(db, "SELECT unit_code FROM dossiers WHERE source = $1", name) == "689"
