"""`ioc dead-letters list|replay` as an operator runs them."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from ioc.cli import app
from ioc.collectors import ingest_json
from ioc.db import Database

from .factories import dossier, new_source, value


async def ioc(database_url: str, *args: str) -> tuple[int, str]:
    """Run the real CLI in a worker thread (it calls asyncio.run; the test loop is busy)."""
    result = await asyncio.to_thread(
        CliRunner().invoke, app, list(args), env={"IOC_DATABASE_URL": database_url}
    )
    return result.exit_code, result.output


async def test_list_and_replay_from_the_command_line(db: Database, database_url: str) -> None:
    source = new_source()
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [dossier("CLI-1", MaDonVi="000.77.77.H77")])
    code, out = await ioc(database_url, "dead-letters", "list", "--source", source)
    assert code == 0
    line = next(x for x in out.splitlines() if "CLI-1" in x)
    dl_id, _, src, feed, rid, state, seen, reasons = line.split("\t")
    assert (src, feed, rid, state, seen) == (source, "dossiers", "CLI-1", "pending", "x1")
    assert reasons.startswith("MaDonVi: unknown unit '000.77.77.H77'")
    conn = await db.connect_raw()
    try:
        await conn.execute("INSERT INTO organs VALUES ('000.77.77.H77', '690', 'test')")
    finally:
        await conn.close()
    code, out = await ioc(database_url, "dead-letters", "replay", dl_id)
    assert code == 0 and f"{dl_id}\taccepted" in out
    assert "replayed 1: 1 accepted, 0 still rejected" in out
    assert await value(
        db, "SELECT unit_code FROM dossiers WHERE source = $1 AND source_id = 'CLI-1'", source
    ) == "690"  # fmt: skip
    code, out = await ioc(database_url, "dead-letters", "list", "--source", source)
    assert "0 dead-letter(s)" in out


async def test_list_payloads_are_masked(db: Database, database_url: str) -> None:
    source = new_source()
    bad = dossier("CLI-2", KenhThucHien=9, SoDienThoai="0912345678")
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [bad, "Trần Văn Bình"])
    code, out = await ioc(database_url, "dead-letters", "list", "--source", source, "--payload")
    assert code == 0
    assert "Nguyễn Thị Hồng Nhung" not in out and "0912345678" not in out
    assert "Trần Văn Bình" not in out
    assert '"ChuHoSo": "N*** T*** H*** N***"' in out and '"SoDienThoai": "******5678"' in out
    assert "(withheld: application/json, 19 bytes; may hold personal data)" in out
