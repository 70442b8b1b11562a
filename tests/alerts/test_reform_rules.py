"""A rule for each child of a district the 2025 reform emptied (issue 22, item 10): it once
evaluated nothing and said nothing. Now it follows what the district's communes became,
and says so when it is created and read."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest

from ioc.alerts import list_open_alerts
from ioc.alerts.rules import rule_targets
from ioc.auth import create_token
from ioc.db import Database
from ioc.units import load_units_csv
from ioc.units.service import DEMO_FILES
from tests.alerts.conftest import evaluate, make_rule, publish_kpi
from tests.conftest import DatabaseFactory, ServerMaker

DATA = Path(DEMO_FILES[0]).parent


@pytest.fixture(scope="module")
async def reformed(databases: DatabaseFactory) -> str:
    """Bình Phước (2024), then Đồng Nai (2025) and the old→new mapping: district 689 has no
    current commune (25195 kept its code and moved under 75; 25198… merged into it)."""
    url = await databases.create()
    db = Database(url, pool_size=2)
    async with db.session() as s:
        await load_units_csv(s, DATA / "units-75-dongnai-2025.csv", valid_from=date(2025, 7, 1))
        await load_units_csv(s, DATA / "units-70-to-75-2025-mapping.csv")
    await db.close()
    return url


async def test_each_child_rule_on_an_emptied_district_follows_the_successors(
    reformed: str, make_server: ServerMaker
) -> None:
    db = Database(reformed, pool_size=2)
    try:
        rule, _ = await make_rule(db, unit="689", each_child=True)
        async with db.session() as session:
            units, notes = await rule_targets(session, rule)
        assert "25195" in units and "25198" not in units  # merged away into 25195
        assert all(u != "689" for u in units)
        assert notes and "no current child units" in notes[0] and "25195" in notes[0]
        await publish_kpi(db, "dossier_ontime_rate", "25195", 0.5)
        await evaluate(db)
        async with db.session() as session:
            firing = {a["unit"]: a["state"] for a in await list_open_alerts(session, "75")}
        assert firing.get("25195") == "firing"

        async with db.session() as session:
            admin, _ = await create_token(session, name="qt", role="admin", unit_code=None)
        server = await make_server(url=reformed)
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as http:
            body = {
                "name": "Đúng hạn theo xã mới",
                "kpi": "dossier_ontime_rate",
                "unit": "689",
                "each_child": True,
                "window": "month",
                "op": "<",
                "threshold": 0.9,
            }
            created = await http.post("/api/v1/alert-rules", json=body)
            assert created.status_code == 201, created.text
            assert "25195" in created.json()["evaluated_for"]
            assert "reform" in created.json()["notes"][0]
            read = await http.get(f"/api/v1/alert-rules/{created.json()['rule']['id']}")
            assert read.json()["notes"] == created.json()["notes"]
            plain = await http.post(
                "/api/v1/alert-rules",
                json={**body, "name": "Các xã của tỉnh", "unit": "75"},
            )
            assert plain.status_code == 201, plain.text
            assert plain.json()["notes"] == []
    finally:
        await db.close()
