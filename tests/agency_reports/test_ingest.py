"""Reports of agencies come in like the other feeds: pushed to a real server
(`POST /api/v1/ingest/agency-reports`) or pulled from a real HTTP source (docs/api.md §1.5);
stored once per (source, id), never regressed by an older version; a bad record is
dead-lettered with its reasons while the others are stored, and replays after a fix."""

from __future__ import annotations

import httpx

from ioc.collectors.pull import Retry, poll
from ioc.db import Database
from ioc.settings import CollectorSource

from ..collectors.factories import fetch, new_source, value
from ..collectors.sources import FaultySource
from ..conftest import TokenMaker
from .factories import agency_report, filed

FAST = Retry(attempts=3, base_seconds=0.01, max_seconds=0.05)
URL = "/api/v1/ingest/agency-reports"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_push_stores_once_and_dead_letters_the_bad_ones(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70")
    source = new_source()
    body = [
        agency_report("R-1"),
        filed("R-2", "2026-03-09T15:00:00+07:00", "online", unit="25198"),
        filed("R-3", "", "fax"),
        "junk",
        agency_report("R-4", due_at="2026-02-10"),
        agency_report("R-5", unit="000.99.99.H10"),
        agency_report("R-6", due_at="31/02/2026", status="late"),
    ]
    r = await client.post(f"{URL}?source={source}", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 2,
        "rejected": [
            {"index": 2, "id": "R-3", "errors": [
                "channel: unknown value 'fax' (expected online or paper)",
                "status filed needs filed_at (when the report was sent)",
            ]},
            {"index": 3, "id": None, "errors": ["not a JSON object"]},
            {"index": 4, "id": "R-4", "errors": [
                "due_at 2026-02-10T23:59:59.999999+07:00 is before requested_at "
                "2026-03-01T08:00:00+07:00",
            ]},
            {"index": 5, "id": "R-5", "errors": [
                "unit: unknown unit '000.99.99.H10' (neither a loaded GSO unit code nor a "
                "mapped organ id; load it with `ioc units load` / `ioc organs load`, then "
                "replay)",
            ]},
            {"index": 6, "id": "R-6", "errors": [
                "due_at: '31/02/2026' is not a valid calendar date",
                "status: unknown value 'late' (expected one of requested, filed, accepted, "
                "cancelled)",
            ]},
        ],
    }  # fmt: skip
    rows = await fetch(
        db,
        "SELECT source_id, unit_code, status, channel, filed_at IS NOT NULL AS filed, due_at, "
        "change_seq FROM agency_reports WHERE source = $1 ORDER BY source_id",
        source,
    )
    assert [tuple(r)[:5] for r in rows] == [
        ("R-1", "25195", "requested", None, False),
        ("R-2", "25198", "filed", "online", True),
    ]
    # a deadline given as a day is the end of that local day
    assert rows[0]["due_at"].isoformat() == "2026-03-10T16:59:59.999999+00:00"
    letters = await fetch(
        db,
        "SELECT record_id, feed, format, times_seen, reasons FROM dead_letters "
        "WHERE source = $1 ORDER BY record_id NULLS FIRST",
        source,
    )
    assert [(d["record_id"], d["feed"], d["format"], d["times_seen"]) for d in letters] == [
        (None, "agency_reports", "agency_report", 1),
        ("R-3", "agency_reports", "agency_report", 1),
        ("R-4", "agency_reports", "agency_report", 1),
        ("R-5", "agency_reports", "agency_report", 1),
        ("R-6", "agency_reports", "agency_report", 1),
    ]

    # the same batch again: nothing changes, the rejects are counted again
    r = await client.post(f"{URL}?source={source}", json=body, headers=auth(token))
    assert r.json()["accepted"] == 2 and len(r.json()["rejected"]) == 5
    again = await fetch(
        db, "SELECT change_seq FROM agency_reports WHERE source = $1 ORDER BY source_id", source
    )
    assert [a["change_seq"] for a in again] == [r["change_seq"] for r in rows]
    assert await value(
        db, "SELECT sum(times_seen) FROM dead_letters WHERE source = $1", source
    ) == 10  # fmt: skip

    # filed later; then the older version arrives late and does not take it back
    newer = filed("R-1", "2026-03-09T10:00:00+07:00", "paper")
    r = await client.post(f"{URL}?source={source}", json=[newer], headers=auth(token))
    assert r.json() == {"accepted": 1, "rejected": []}
    r = await client.post(
        f"{URL}?source={source}", json=[agency_report("R-1")], headers=auth(token)
    )
    assert r.json() == {"accepted": 1, "rejected": []}
    assert tuple(
        (await fetch(db, "SELECT status, channel FROM agency_reports WHERE source = $1 "
                     "AND source_id = 'R-1'", source))[0]
    ) == ("filed", "paper")  # fmt: skip
    history = await fetch(
        db,
        "SELECT h.status FROM agency_report_history h JOIN agency_reports a "
        "ON a.id = h.agency_report_id WHERE a.source = $1 AND a.source_id = 'R-1' ORDER BY h.at",
        source,
    )
    assert [h["status"] for h in history] == ["requested", "filed"]

    # after the organ is mapped, the dead-letter replays (admin) and is stored
    admin = await make_token("admin", "70")
    listed = await client.get(
        "/api/v1/dead-letters?feed=agency_reports&limit=1000", headers=auth(admin)
    )
    assert listed.status_code == 200
    mine = {d["record_id"]: d for d in listed.json()["items"] if d["source"] == source}
    assert mine["R-5"]["reasons"][0].startswith("unit: unknown unit '000.99.99.H10'")
    conn = await db.connect_raw()
    try:
        await conn.execute(
            "INSERT INTO organs (organ_id, unit_code, name) VALUES "
            "('000.99.99.H10', '25320', 'UBND xã thử') ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()
    r = await client.post(
        "/api/v1/dead-letters/replay",
        json={"ids": [mine["R-5"]["id"], mine["R-3"]["id"]]},
        headers=auth(admin),
    )
    assert r.status_code == 200, r.text
    outcomes = {o["id"]: o["accepted"] for o in r.json()["results"]}
    assert outcomes == {mine["R-5"]["id"]: True, mine["R-3"]["id"]: False}
    assert await value(
        db, "SELECT unit_code FROM agency_reports WHERE source = $1 AND source_id = 'R-5'", source
    ) == "25320"  # fmt: skip


async def test_push_scope_and_refusals(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    district = await make_token("collector", "689")
    source = new_source()
    body = [agency_report("S-1", unit="25198"), agency_report("S-2", unit="25320")]
    r = await client.post(f"{URL}?source={source}", json=body, headers=auth(district))
    assert r.json() == {
        "accepted": 1,
        "rejected": [
            {"index": 1, "id": "S-2",
             "errors": ["unit: unit 25320 is outside this collector token's unit"]},
        ],
    }  # fmt: skip
    operator = await make_token("operator", "70")
    assert (await client.post(URL, json=body, headers=auth(operator))).status_code == 403
    assert (await client.post(URL, json=body)).status_code == 401
    not_json = await client.post(
        URL, content=b"x", headers={**auth(district), "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    not_array = await client.post(URL, json={"id": "S-3"}, headers=auth(district))
    assert not_array.status_code == 400
    assert "expected a JSON array of agency_reports" in not_array.text
    assert await value(
        db, "SELECT count(*) FROM agency_reports WHERE source = $1", source
    ) == 1  # fmt: skip


async def test_pull_from_a_failing_source_counts_exactly(db: Database) -> None:
    items = [
        filed(f"P-{i:03d}", "2026-03-09T15:00:00+07:00", "online" if i % 3 else "paper")
        if i % 2
        else agency_report(f"P-{i:03d}")
        for i in range(120)
    ]
    items[30]["channel"] = "carrier pigeon"
    items[77]["unit"] = "99998"
    name = new_source()
    faults = {1: "500", 3: "garbage", 5: "dup"}
    async with FaultySource(items, faults.get) as src, httpx.AsyncClient() as client:
        source = CollectorSource(
            name=name, kind="agency_reports", url=src.url, page_size=40, timeout_seconds=2
        )
        pages = [await poll(db, client, source, retry=FAST) for _ in range(2)]
        served = src.served
    assert served == ["500", "page", "garbage", "page", "dup", "page"]
    assert pages == [3, 1]  # the duplicate page (stored again, idempotently) ends a round
    assert await value(db, "SELECT count(*) FROM agency_reports WHERE source = $1", name) == 118
    assert await value(
        db, "SELECT count(*) FROM agency_reports WHERE source = $1 AND channel = 'online'", name
    ) == 39  # fmt: skip
    letters = await fetch(
        db, "SELECT record_id, times_seen, reasons FROM dead_letters WHERE source = $1 "
        "ORDER BY record_id", name,
    )  # fmt: skip
    # P-077 came twice (in the page served again), one dead-letter seen twice
    assert [(d["record_id"], d["times_seen"]) for d in letters] == [("P-030", 1), ("P-077", 2)]
    cursor = await fetch(
        db, "SELECT feed, cursor, consecutive_failures FROM source_cursors WHERE source = $1",
        name,
    )  # fmt: skip
    assert tuple(cursor[0]) == ("agency_reports", "120", 0)
