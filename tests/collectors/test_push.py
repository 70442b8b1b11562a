"""Push endpoints (docs/api.md §2) over a real server: per-record results, limits, hostile XML."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx

from ioc.db import Database

from ..conftest import RunningServer, ServerMaker, TokenMaker
from .factories import dossier, fetch, new_source, report, value

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_push_dossiers_per_record_results(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70")
    source = new_source()
    body = [
        dossier("P-1"),
        dossier("P-2", TrangThaiHoSo=42),
        "junk",
        dossier("P-3", MaDonVi="25195"),
    ]
    r = await client.post(
        f"/api/v1/ingest/dossiers?source={source}", json=body, headers=auth(token)
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 2,
        "rejected": [
            {"index": 1, "id": "P-2", "errors": ["TrangThaiHoSo: unknown code 42 (status 1..10)"]},
            {"index": 2, "id": None, "errors": ["not a JSON object"]},
        ],
    }
    # the sync envelope as the one-stop systems send it; then again: nothing changes
    envelope = json.loads((SAMPLES / "dvcqg-dongbohoso.json").read_text())
    for _ in range(2):
        r = await client.post(
            f"/api/v1/ingest/dossiers?source={source}", json=envelope, headers=auth(token)
        )
        assert r.json() == {"accepted": 2, "rejected": []}
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", source) == 4


async def test_push_reports_danang_and_procedures(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70")
    source = new_source()
    gopy = json.loads((SAMPLES / "hotline-danang-gopy.json").read_text())
    r = await client.post(
        f"/api/v1/ingest/reports?source={source}", json=[*gopy, report("N-1")], headers=auth(token)
    )
    assert r.json() == {"accepted": 3, "rejected": []}
    units = await value(
        db, "SELECT string_agg(unit_code, ',' ORDER BY source_id) FROM reports WHERE source = $1",
        source,
    )  # fmt: skip
    assert units == "25204,25213,25195"
    r = await client.post(
        f"/api/v1/ingest/procedures?source={source}",
        json=[{"MaTTHC": "1.001612.000.00.00.H10", "TenTTHC": "Đăng ký hộ kinh doanh",
               "MucDo": 4, "TrucTuyen": True, "MaDonVi": "689"}],
        headers=auth(token),
    )  # fmt: skip
    assert r.json() == {"accepted": 1, "rejected": []}


async def test_scope_roles_and_limits(make_server: ServerMaker, make_token: TokenMaker) -> None:
    server = await make_server(ingest_max_records=3, ingest_max_body_bytes=4096)
    district = await make_token("collector", "688")
    operator = await make_token("operator", "70")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        url = f"/api/v1/ingest/dossiers?source={new_source()}"
        r = await c.post(url, json=[dossier("S-1")], headers=auth(district))
        assert r.json()["rejected"][0]["errors"] == [
            "MaDonVi: unit 689 is outside this collector token's unit"
        ]
        r = await c.post(url, json=[dossier("S-1")], headers=auth(operator))
        assert r.status_code == 403
        r = await c.post(url, json=[dossier("S-1")])
        assert r.status_code == 401
        r = await c.post(url, content=b"MaHoSo=1", headers={**auth(district),
                         "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert r.status_code == 415
        r = await c.post(url, content=b"[{", headers={**auth(district),
                         "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"
        r = await c.post(url, json={"hello": 1}, headers=auth(district))
        assert r.status_code == 400
        r = await c.post(url, json=[dossier(f"S-{i}") for i in range(4)], headers=auth(district))
        assert r.status_code == 413
        r = await c.post(url, json=[dossier("S-1", ChuHoSo="x" * 5000)], headers=auth(district))
        assert r.status_code == 413


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<edXML><MessageHeader><Subject>&x;</Subject></MessageHeader></edXML>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]><lolz>&lol9;</lolz>"""


async def test_documents_push_and_hostile_xml(
    server: RunningServer, make_token: TokenMaker, db: Database
) -> None:
    token = await make_token("collector", "70")
    source = new_source()
    xml = {**auth(token), "Content-Type": "application/xml"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        for body in (XXE, LAUGHS, b"<a>" * 200 + b"</a>" * 200, b"not xml at all"):
            r = await c.post(f"/api/v1/ingest/documents?source={source}", content=body, headers=xml)
            assert r.status_code == 400, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "passwd" not in r.text and "root:" not in r.text
        # many hostile bodies at once, and the server still answers the real ones
        hostile = [c.post("/api/v1/ingest/documents", content=LAUGHS, headers=xml)
                   for _ in range(20)]  # fmt: skip
        assert {r.status_code for r in await asyncio.gather(*hostile)} == {400}
        r = await c.post(
            f"/api/v1/ingest/documents?source={source}",
            content=(SAMPLES / "edxml-document.edxml").read_bytes(),
            headers=xml,
        )
        assert r.json() == {"accepted": 1, "rejected": []}
        r = await c.post(
            f"/api/v1/ingest/documents?source={source}",
            content=(SAMPLES / "edxml-status.xml").read_bytes(),
            headers={**auth(token), "Content-Type": "text/xml; charset=utf-8"},
        )
        assert r.json() == {"accepted": 1, "rejected": []}
        r = await c.post(f"/api/v1/ingest/documents?source={source}", content=b'"<a/>"',
                         headers={**auth(token), "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 415, r.text
        assert (await c.get("/healthz")).status_code == 200
    assert await value(db, "SELECT status FROM documents WHERE source = $1", source) == "04"


async def test_dead_letters_api_admin_only_and_replay(
    client: httpx.AsyncClient, make_token: TokenMaker
) -> None:
    collector = await make_token("collector", "70")
    admin = await make_token("admin", None)
    operator = await make_token("operator", "70")
    source = new_source()
    await client.post(
        f"/api/v1/ingest/reports?source={source}",
        json=[report("DL-1", unit="77777"), report("DL-2", channel="fax")],
        headers=auth(collector),
    )
    r = await client.get(f"/api/v1/dead-letters?source={source}", headers=auth(operator))
    assert r.status_code == 403
    r = await client.get(f"/api/v1/dead-letters?source={source}", headers=auth(admin))
    items: list[dict[str, Any]] = r.json()["items"]
    assert [(i["record_id"], i["feed"], i["reasons"][0][:22]) for i in items] == [
        ("DL-1", "reports", "unit: unknown unit '77"),
        ("DL-2", "reports", "channel: unknown value"),
    ]
    assert json.loads(items[0]["payload"])["title"] == "Ổ gà trên Quốc lộ 14"
    assert [i["payload_masked"] for i in items] == [True, True]
    r = await client.post(
        "/api/v1/dead-letters/replay", json={"ids": [items[1]["id"]]}, headers=auth(admin)
    )
    assert r.json()["accepted"] == 0 and r.json()["results"][0]["errors"][0].startswith("channel")
    r = await client.post("/api/v1/dead-letters/replay", json={"ids": [999999999]},
                          headers=auth(admin))  # fmt: skip
    assert r.status_code == 404


async def test_identical_records_in_one_batch(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    """Two identical rejects in one batch once made the dead-letter upsert touch one row
    twice (CardinalityViolationError → 500); duplicates of valid records are kept once."""
    token = await make_token("collector", "70")
    source = new_source()
    for feed in ("reports", "dossiers", "procedures"):
        for _ in range(2):
            r = await client.post(
                f"/api/v1/ingest/{feed}?source={source}", json=[{}, {}], headers=auth(token)
            )
            assert r.status_code == 200, r.text
            assert [x["index"] for x in r.json()["rejected"]] == [0, 1]
    rows = await fetch(
        db,
        "SELECT feed, times_seen FROM dead_letters WHERE source = $1 ORDER BY feed",
        source,
    )
    assert [(r["feed"], r["times_seen"]) for r in rows] == [
        ("dossiers", 4),
        ("procedures", 4),
        ("reports", 4),
    ]
    proc = {"MaTTHC": "1.0001", "TenTTHC": "Cấp phép", "MucDo": 4, "TrucTuyen": True,
            "MaDonVi": "689"}  # fmt: skip
    for feed, rec in (
        ("reports", report("DUP-1")),
        ("dossiers", dossier("DUP-1")),
        ("procedures", proc),
    ):
        r = await client.post(
            f"/api/v1/ingest/{feed}?source={source}", json=[rec, rec, rec], headers=auth(token)
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 3, "rejected": []}
    assert await value(db, "SELECT count(*) FROM reports WHERE source = $1", source) == 1
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", source) == 1
    assert await value(db, "SELECT count(*) FROM procedures WHERE source = $1", source) == 1


async def test_dead_letters_masked_and_unmasked_read_logged(
    client: httpx.AsyncClient, make_token: TokenMaker, db: Database
) -> None:
    collector = await make_token("collector", "70")
    admin = await make_token("admin", None, name="Quản trị tỉnh")
    admin_688 = await make_token("admin", "688")
    source = new_source()
    citizen = {"citizen_name": "Trần Văn Bình", "citizen_phone": "0987654321"}
    await client.post(
        f"/api/v1/ingest/reports?source={source}",
        json=[report("DLM-1", channel="fax", unit="689", **citizen), "Trần Văn Bình"],
        headers=auth(collector),
    )
    # an envelope whose organs are all unmapped is dead-lettered (signer's name inside)
    envelope = re.sub(
        rb"<edXML:OrganId>[^<]*<",
        b"<edXML:OrganId>000.99.99.H99<",
        (SAMPLES / "edxml-document.edxml").read_bytes(),
    )
    r = await client.post(
        f"/api/v1/ingest/documents?source={source}",
        content=envelope,
        headers={**auth(collector), "Content-Type": "application/xml"},
    )
    assert len(r.json()["rejected"]) == 1, r.text
    r = await client.get(f"/api/v1/dead-letters?source={source}", headers=auth(admin))
    assert r.status_code == 200
    assert "Trần Văn Bình" not in r.text and "0987654321" not in r.text
    assert "Trần Văn Minh" not in r.text
    items = r.json()["items"]
    assert [(i["format"], i["payload_masked"], i["payload_bytes"]) for i in items][1:] == [
        ("report", True, 19),
        ("edxml", True, len(envelope)),
    ]
    masked = json.loads(items[0]["payload"])
    assert (masked["citizen_name"], masked["citizen_phone"]) == ("T*** V*** B***", "******4321")
    assert [i["payload"] for i in items[1:]] == [None, None]
    first = items[0]["id"]
    # unmasked: admin only, with a reason, within the token's unit, each read logged
    url = f"/api/v1/dead-letters/{first}/payload"
    assert (await client.get(url, headers=auth(admin))).status_code == 422
    assert (await client.get(url, params={"reason": "x"}, headers=auth(admin))).status_code == 422
    r = await client.get(url, params={"reason": "đối chiếu"}, headers=auth(admin_688))
    assert r.status_code == 403
    r = await client.get(url, params={"reason": "đối chiếu"}, headers=auth(collector))
    assert r.status_code == 403
    r = await client.get(
        "/api/v1/dead-letters/999999999/payload", params={"reason": "đối chiếu"},
        headers=auth(admin),
    )  # fmt: skip
    assert r.status_code == 404
    r = await client.get(url, params={"reason": "đối chiếu với 1022"}, headers=auth(admin))
    assert r.status_code == 200
    assert r.json()["payload_masked"] is False
    assert json.loads(r.json()["payload"])["citizen_phone"] == "0987654321"
    logged = await fetch(
        db,
        "SELECT token_name, record_kind, record_key, unit_code, fields, reason, route "
        "FROM personal_data_access_log WHERE record_kind = 'dead_letter' AND record_key = $1",
        str(first),
    )
    assert [tuple(row) for row in logged] == [
        (
            "Quản trị tỉnh",
            "dead_letter",
            str(first),
            "689",
            ["payload"],
            "đối chiếu với 1022",
            f"GET /api/v1/dead-letters/{first}/payload",
        )
    ]
