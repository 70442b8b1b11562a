"""Times outside any record's life (year 1, year 9999 with an offset) are one record's
problem, never the batch's (issue 22, item 2): they once raised OverflowError — a 500 on
push with the whole batch lost, and on pull a page fetched again and again."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from ioc.collectors.pull import poll
from ioc.db import Database
from ioc.settings import CollectorSource

from ..conftest import TokenMaker
from .factories import dossier, fetch, new_source, report, value
from .sources import FaultySource
from .test_pull import FAST

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def reasons(db: Database, source: str) -> dict[str, list[str]]:
    rows = await fetch(
        db, "SELECT record_id, reasons::text FROM dead_letters WHERE source = $1", source
    )
    return {r["record_id"]: json.loads(r["reasons"]) for r in rows}


async def test_pushed_batches_keep_the_others_and_dead_letter_the_one(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    headers = {"Authorization": f"Bearer {await make_token('collector', '70')}"}
    source = new_source()
    dossiers = [
        dossier("Y-1"),
        dossier("Y-2", NgayTiepNhan="00010101000000"),
        dossier("Y-3", NgayHenTra="99991231235959"),
        dossier("Y-4"),
    ]
    r = await client.post(
        f"/api/v1/ingest/dossiers?source={source}", json=dossiers, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert [x["id"] for x in r.json()["rejected"]] == ["Y-2", "Y-3"]
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", source) == 2
    assert (await reasons(db, source))["Y-2"] == [
        "NgayTiepNhan: '00010101000000' is outside the years 1900–2199 (a placeholder, not a time)"
    ]

    reports = [
        report("R-1"),
        report("R-2", received_at="0001-01-01T00:00:00+14:00"),
        report("R-3", due_at="9999-12-31T23:59:59-12:00"),
    ]
    gopy = json.loads((SAMPLES / "hotline-danang-gopy.json").read_text())
    placeholder = {**gopy[0], "id": 555001, "ngayTao": "01/01/0001 00:00"}
    r = await client.post(
        f"/api/v1/ingest/reports?source={source}",
        json=[*reports, placeholder, gopy[1]],
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert sorted(x["id"] for x in r.json()["rejected"]) == ["555001", "R-2", "R-3"]
    letters = await reasons(db, source)
    assert "outside the years 1900–2199" in letters["R-2"][0]
    assert "outside the years 1900–2199" in " ".join(letters["555001"])
    assert await value(db, "SELECT count(*) FROM reports WHERE source = $1", source) == 2


async def test_a_pulled_page_with_a_year_one_record_moves_on(db: Database) -> None:
    records = [dossier(f"PY-{i:03d}") for i in range(30)]
    records[4]["NgayTiepNhan"] = "00010101000000"
    records[21]["NgayKetThucXuLy"] = "99991231235959"
    records[21]["TrangThaiHoSo"] = 10
    name = new_source()
    async with FaultySource(records) as src, httpx.AsyncClient() as http:
        source = CollectorSource(name=name, kind="dossiers", url=src.url, page_size=10)
        await poll(db, http, source, retry=FAST)
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", name) == 28
    assert set(await reasons(db, name)) == {"PY-004", "PY-021"}
    assert await value(db, "SELECT cursor FROM source_cursors WHERE source = $1", name) == "30"
