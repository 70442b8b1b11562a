"""The scorecard over HTTP, live over the websocket, and from the command line: a real server
on its own database, real tokens, a real websocket client, the real CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ioc.cli import app
from ioc.db import Database
from tests.conftest import DatabaseFactory, ServerMaker
from tests.live.conftest import connect, recv, subscribe, token_for

VN = timezone(timedelta(hours=7))
C1 = "25432"


@pytest.fixture(scope="module")
async def api_url(databases: DatabaseFactory) -> str:
    return await databases.create()


async def ioc(url: str, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(
        CliRunner().invoke, app, list(args), env={"IOC_DATABASE_URL": url}
    )
    return result.exit_code, result.output


async def test_http_roles_units_and_entered_values(make_server: ServerMaker, api_url: str) -> None:
    server = await make_server(url=api_url, alerts_enabled=False, feeds_enabled=False)
    db = Database(api_url, pool_size=1)
    try:
        admin = await token_for(db, "admin", None)
        operator = await token_for(db, "operator", "70")
        district = await token_for(db, "district", "689")
    finally:
        await db.close()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        got = await http.get(
            "/api/v1/scorecards/766", params={"unit": "70", "period": "2026-02"},
            headers=auth(operator),
        )  # fmt: skip
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["unit"], body["period"], body["from"], body["to"]) == (
            "70", "2026-02", "2026-02-01", "2026-02-28",
        )  # fmt: skip
        assert body["closed"] is True and body["max"] <= 100
        assert [g["id"] for g in body["groups"]] == ["1", "2", "3", "3b", "4", "5"]
        assert {c["unit"] for c in body["children"]} >= {"689", "697"}
        # A district sees its own scorecard, not its neighbour's.
        mine = await http.get(
            "/api/v1/scorecards/766", params={"unit": "689"}, headers=auth(district)
        )
        assert mine.status_code == 200 and mine.json()["closed"] is False
        other = await http.get(
            "/api/v1/scorecards/766", params={"unit": "697"}, headers=auth(district)
        )
        assert other.status_code == 403
        bad = await http.get(
            "/api/v1/scorecards/766", params={"unit": "70", "period": "2026-13"},
            headers=auth(operator),
        )  # fmt: skip
        assert bad.status_code == 422 and "period" in bad.json()["detail"]
        # The catalogue says which indicators are entered, and for which period.
        listed = {i["id"]: i for i in (await http.get(
            "/api/v1/indicators", headers=auth(operator))).json()}  # fmt: skip
        assert listed["dti"]["source"] == "entered" and listed["dti"]["period"] == "year"
        assert listed["i766_2_1"]["source"] == "computed" and listed["i766_2_1"]["points"] == 20
        assert listed["i766_1_1"]["source"] == "entered"
        # Entering: admin only; the value is shown with its source and kept as history.
        value = {"indicator": "i766_1_2", "unit": "70", "period": "2026-02", "value": 0.75,
                 "note": "Theo Cổng DVCQG"}  # fmt: skip
        refused = await http.post("/api/v1/indicator-values", json=value, headers=auth(operator))
        assert refused.status_code == 403
        created = await http.post("/api/v1/indicator-values", json=value, headers=auth(admin))
        assert created.status_code == 201, created.text
        assert created.json()["entered_by"].startswith("live-admin")
        history = await http.get(
            "/api/v1/indicator-values", params={"unit": "70"}, headers=auth(operator)
        )
        assert [v["value"] for v in history.json()] == [0.75]
        again = (await http.get(
            "/api/v1/scorecards/766", params={"unit": "70", "period": "2026-02"},
            headers=auth(operator))).json()  # fmt: skip
        entered = next(i for g in again["groups"] for i in g["indicators"] if i["id"] == "i766_1_2")
        assert entered["source"] == "entered" and entered["score"] == pytest.approx(3.0)
        assert entered["entered"]["note"] == "Theo Cổng DVCQG"
        assert again["version"] == body["version"] + 1  # the closed month was recomputed


async def test_a_changed_scorecard_reaches_screens(make_server: ServerMaker, api_url: str) -> None:
    server = await make_server(
        url=api_url, alerts_enabled=False, feeds_enabled=False, scorecard_live_seconds=0.2
    )
    db = Database(api_url, pool_size=1)
    try:
        operator = await token_for(db, "operator", "70")
        collector = await token_for(db, "collector", "70")
    finally:
        await db.close()
    ws = await connect(server.ws_url, operator)
    try:
        await subscribe(ws, C1, ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        now = datetime.now(VN)
        dossier = {
            "MaHoSo": "SC-LIVE-1", "MaTTHC": "1.001612.000.00.00.H10", "KenhThucHien": 2,
            "MaDonVi": C1, "NgayTiepNhan": now.strftime("%Y%m%d%H%M%S"),
            "NgayHenTra": (now + timedelta(days=30)).strftime("%Y%m%d%H%M%S"),
            "TrangThaiHoSo": 4,
        }  # fmt: skip
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            sent = await http.post(
                "/api/v1/ingest/dossiers", json=[dossier],
                headers={"Authorization": f"Bearer {collector}"},
            )  # fmt: skip
        assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text

        async def scorecard() -> dict[str, Any]:
            while True:
                message = await recv(ws, timeout=60)
                if message["type"] == "scorecard" and message["unit"] == C1:
                    return message

        message = await asyncio.wait_for(scorecard(), 90)
        card = message["scorecard"]
        assert message["seq"] > 0 and card["closed"] is False and card["unit"] == C1
        on_time = next(i for g in card["groups"] for i in g["indicators"] if i["id"] == "i766_2_1")
        assert (on_time["numerator"], on_time["denominator"], on_time["score"]) == (1, 1, 20)
    finally:
        await ws.close()


async def test_command_line_load_show_recompute(api_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "indicator,unit,period,value,note\n"
        "dti,70,2025,0.61,Bộ TT&TT\n"
        "dti,70,2025,abc,\n"
        "nope,70,2025,0.5,\n",
        encoding="utf-8",
    )
    code, out = await ioc(api_url, "indicators", "load", str(bad))
    assert code == 1 and "line 3" in out and "nothing loaded" in out
    code, out = await ioc(api_url, "indicators", "load", str(bad.with_name("missing.csv")))
    assert code == 2
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("indicator,unit,period,value\nnope,70,2025,0.5\n", encoding="utf-8")
    code, out = await ioc(api_url, "indicators", "load", str(unknown))
    assert code == 1 and "line 2" in out and "nothing loaded" in out
    good = tmp_path / "chi-so-2025.csv"
    good.write_text(
        "indicator,unit,period,value,note\n"
        'dti,70,2025,"0,61",Bộ TT&TT công bố\n'
        "par_index,70,2025,0.87,\n"
        "pci,70,2025,66.4,VCCI\n",
        encoding="utf-8",
    )
    code, out = await ioc(api_url, "indicators", "load", str(good), "--by", "Sở Nội vụ")
    assert code == 0 and "loaded 3 values" in out
    db = Database(api_url, pool_size=1)
    try:
        async with db.session() as s:
            from ioc.scorecards.entered import value_history

            values = {v.indicator: v for v in await value_history(s, ["70"])}
    finally:
        await db.close()
    assert values["dti"].value == 0.61 and values["dti"].source == "file:chi-so-2025.csv"
    assert values["pci"].entered_by == "Sở Nội vụ"
    code, out = await ioc(api_url, "scorecards", "show", "--unit", "70", "--period", "2026-01",
                          "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["period"] == "2026-01"
    code, out = await ioc(api_url, "scorecards", "show", "--unit", "70", "--period", "2026-01")
    assert code == 0 and "Chỉ số 766" in out and "Tiến độ giải quyết" in out
    code, out = await ioc(api_url, "scorecards", "recompute", "--unit", "70", "--period", "2026-01")
    assert code == 0 and "version 2" in out and "nothing changed" in out
    code, out = await ioc(api_url, "scorecards", "recompute", "--unit", "70", "--period", "month")
    assert code == 1 and "not over" in out
