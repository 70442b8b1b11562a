"""Reasons that say what is wrong and what to do: an edXML organ missing from the mapping,
the dead-letter listing's total, the unknown-KPI hint pointing at a route that lists KPIs."""

from __future__ import annotations

from pathlib import Path

import httpx

from ioc.collectors import ingest_json
from ioc.db import Database

from ..collectors.factories import dossier, new_source
from ..collectors.test_cli import ioc
from ..conftest import TokenMaker
from .conftest import auth

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
XML = {"Content-Type": "application/xml"}


async def test_edxml_from_an_unmapped_organ_says_so(
    client: httpx.AsyncClient, make_token: TokenMaker
) -> None:
    token = await make_token("collector", "689")
    doc = (SAMPLES / "edxml-document.edxml").read_text()
    # sent by an organ nobody mapped, to Phước Long (688): outside 689, one organ unknown
    doc = doc.replace("000.00.00.H10", "000.99.17.H10").replace("000.21.17.H10", "000.23.17.H10")
    r = await client.post(
        f"/api/v1/ingest/documents?source={new_source()}",
        content=doc.encode(),
        headers={**auth(token), **XML},
    )
    assert r.status_code == 200, r.text
    (reason,) = r.json()["rejected"][0]["errors"]
    assert "000.99.17.H10 are not mapped to any unit" in reason
    assert "ioc organs load FILE.csv" in reason
    status = (SAMPLES / "edxml-status.xml").read_text().replace("000.21.17.H10", "000.98.17.H10")
    r = await client.post(
        f"/api/v1/ingest/documents?source={new_source()}",
        content=status.encode(),
        headers={**auth(token), **XML},
    )
    (reason,) = r.json()["rejected"][0]["errors"]
    assert reason.startswith(
        "From/OrganId: organ id 000.98.17.H10 is not mapped to any unit: add it to the organs "
        "file (organ_id,unit_code,name) and `ioc organs load FILE.csv`, then replay"
    )
    assert "within this collector's unit" not in reason


async def test_dead_letters_list_tells_the_total(db: Database, database_url: str) -> None:
    source = new_source()
    bad = [dossier(f"DLT-{i}", MaDonVi="000.77.77.H76") for i in range(5)]
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, bad)
    code, out = await ioc(database_url, "dead-letters", "list", "--source", source, "--limit", "2")
    assert code == 0
    assert sum("DLT-" in line for line in out.splitlines()) == 2
    assert "2 of 5 dead-letter(s) shown" in out
    code, out = await ioc(database_url, "dead-letters", "list", "--source", source)
    assert out.splitlines()[-1] == "5 dead-letter(s)"


async def test_unknown_kpi_points_to_the_catalogue(
    client: httpx.AsyncClient, make_token: TokenMaker
) -> None:
    admin = await make_token("admin", "70")
    r = await client.get("/api/v1/kpis/no_such_kpi/series?unit=70", headers=auth(admin))
    assert r.status_code == 404
    assert "GET /api/v1/kpis/catalogue lists the KPI ids" in r.json()["detail"]
    rule = {"name": "x", "kpi": "no_such_kpi", "unit": "70", "op": "<", "threshold": 1}
    r = await client.post("/api/v1/alert-rules", json=rule, headers=auth(admin))
    assert r.status_code == 422, r.text
    assert "GET /api/v1/kpis/catalogue lists the KPI ids" in r.text
    # the route it names does list them
    r = await client.get("/api/v1/kpis/catalogue", headers=auth(admin))
    assert "dossier_online_rate" in r.text
