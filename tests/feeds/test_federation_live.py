"""Two ioc instances: the district's own `/ws` shows the province's KPIs for its unit and
children — first in the snapshot, then live — marked as mirrored; scope holds on both ends."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import text

from ioc.live.snapshot import build_snapshot
from ioc.webhooks import signature_headers
from tests.conftest import DatabaseFactory, ServerMaker
from tests.feeds.conftest import eventually, todays_dossier, token, two_instances
from tests.live.conftest import connect, recv, subscribe


def kpi_of(kpis: list[dict[str, Any]], kpi: str) -> dict[str, Any]:
    return next(k for k in kpis if k["id"] == kpi)


def child_kpi(children: list[dict[str, Any]], unit: str, kpi: str) -> dict[str, Any]:
    return kpi_of(next(c for c in children if c["unit"] == unit)["kpis"], kpi)


async def test_district_screens_show_the_province_values_live(
    databases: DatabaseFactory, make_server: ServerMaker
) -> None:
    async with two_instances(databases, make_server, federation_unit="689") as fed:
        await fed.subscribe("689", ["kpi"])
        await fed.province_engine_ready()
        # Two dossiers at the province for Phường Tân Phú (25195, in Đồng Xoài 689), one online.
        await fed.ingest_dossiers(
            todays_dossier("FED-1", "25195", channel=2),
            todays_dossier("FED-2", "25195", channel=1),
        )
        screen = await token(fed.district_db, "operator", "689")
        local = {"Authorization": f"Bearer {screen}"}

        async def mirrored(expected: float) -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                got = await http.get(
                    f"{fed.district.url}/api/v1/federation/kpis",
                    params={"unit": "689", "window": "today"},
                    headers=local,
                )
            values = {k["id"]: k["value"] for k in got.json()["kpis"]}
            return values.get("dossier_received") == expected

        await eventually(lambda: mirrored(2.0), what="the province's values at the district")

        # A screen on the DISTRICT instance: the snapshot carries the province's values for
        # 689 and its communes, marked as mirrored. The district has no collectors: its own
        # engine says 0 received.
        ws = await connect(fed.district.ws_url, screen)
        try:
            await subscribe(ws, "689", ["today"])
            snap = await recv(ws)
            assert snap["type"] == "snapshot"
            today = snap["kpis"]["today"]
            assert kpi_of(today, "dossier_received") == {
                "id": "dossier_received",
                "value": 2.0,
                "numerator": 2.0,
                "denominator": None,
                "target": None,
                "status": "ok",
                "source": "upstream",
            }
            online = kpi_of(today, "dossier_online_rate")
            assert (online["value"], online["numerator"], online["denominator"]) == (0.5, 1, 2)
            assert online["source"] == "upstream"
            tan_phu = child_kpi(snap["children"]["today"], "25195", "dossier_received")
            assert (tan_phu["value"], tan_phu["source"]) == (2.0, "upstream")
            # A commune with nothing at the province: the district's own (empty) value, unmarked.
            quiet = child_kpi(snap["children"]["today"], "25198", "dossier_received")
            assert "source" not in quiet
            # The overlay is the only place these come from: the district's engine has nothing.
            async with fed.district_db.session() as session:
                own = await build_snapshot(session, "689", ["today"], mirror=False)
            assert kpi_of(own["kpis"]["today"], "dossier_received")["value"] == 0

            # A third dossier at the province (online) reaches the district's screen live.
            await fed.ingest_dossiers(todays_dossier("FED-3", "25195", channel=2))
            seen: dict[str, dict[str, Any]] = {}
            while not (
                seen.get("dossier_received", {}).get("kpi", {}).get("value") == 3
                and seen.get("dossier_online_rate", {}).get("kpi", {}).get("value") is not None
                and abs(seen["dossier_online_rate"]["kpi"]["value"] - 2 / 3) < 1e-9
            ):
                event = await recv(ws)
                assert event["type"] == "kpi", event
                assert event["seq"] > snap["seq"]
                assert event["window"] == "today"
                assert event["kpi"]["source"] == "upstream"
                if event["unit"] == "689":
                    seen[event["kpi"]["id"]] = event
            received = seen["dossier_received"]
            assert received["kpi"]["numerator"] == 3
            assert received["kpi"]["status"] == "ok"
        finally:
            await ws.close()

        # In the district's event log, the local event says where it came from.
        async with fed.district_db.session() as session:
            logged = (
                await session.execute(
                    text(
                        "SELECT payload FROM events WHERE type = 'kpi' AND unit_code = '689' "
                        "AND subject = 'dossier_received' AND time_window = 'today' "
                        "ORDER BY seq DESC LIMIT 1"
                    )
                )
            ).scalar_one()
        assert logged["source"] == "upstream"
        assert logged["kpi"]["value"] == 3
        assert logged["upstream"]["seq"] > 0
        assert logged["upstream"]["webhook_id"].startswith("msg_")

        # Scope, locally: a 689 token may not watch Phước Long (688) on the district either.
        ws = await connect(fed.district.ws_url, screen)
        try:
            await subscribe(ws, "688", ["today"])
            refused = await recv(ws)
            assert (refused["type"], refused["status"]) == ("error", 403)
        finally:
            await ws.close()

        # Scope, at the inbox: even a correctly signed kpi event for 688 is not taken (200 so
        # the upstream does not retry it), neither stored nor published.
        body = json.dumps(
            {
                "type": "kpi",
                "seq": 9_999_999,
                "unit": "688",
                "data": {
                    "unit": "688",
                    "window": "today",
                    "as_of": "2026-11-27T10:00:00+07:00",
                    "kpi": {"id": "dossier_received", "value": 99, "status": "ok"},
                },
            }
        ).encode()
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(
                fed.inbox,
                content=body,
                headers=signature_headers([fed.secret], "msg_elsewhere", body),
            )
        assert resp.status_code == 200
        assert resp.json() == {"accepted": False, "duplicate": False, "seq": 9_999_999}
        async with fed.district_db.session() as session:
            stored = (
                await session.execute(
                    text(
                        "SELECT (SELECT count(*) FROM federation_kpis WHERE unit_code = '688'), "
                        "(SELECT count(*) FROM federation_events WHERE unit_code = '688'), "
                        "(SELECT count(*) FROM events WHERE unit_code = '688')"
                    )
                )
            ).one()
        assert tuple(stored) == (0, 0, 0)


async def test_local_setting_keeps_the_screens_on_the_local_engine(
    databases: DatabaseFactory, make_server: ServerMaker
) -> None:
    """`IOC_FEDERATION_KPIS=local`: the inbox still stores the upstream's values (REST), but
    publishes no local event and the snapshot shows only the district's own engine."""
    async with two_instances(databases, make_server, federation_kpis="local") as fed:
        await fed.subscribe("689", ["kpi"])
        await fed.province_engine_ready()
        await fed.ingest_dossiers(todays_dossier("LOC-1", "25195"))
        screen = await token(fed.district_db, "operator", "689")

        async def stored() -> bool:
            async with fed.district_db.session() as session:
                value = (
                    await session.execute(
                        text(
                            "SELECT value FROM federation_kpis WHERE unit_code = '689' "
                            "AND time_window = 'today' AND kpi_id = 'dossier_received'"
                        )
                    )
                ).scalar()
            return value == 1

        await eventually(stored, what="the province's value stored at the district")
        async with fed.district_db.session() as session:
            mirrored_events = (
                await session.execute(
                    text("SELECT count(*) FROM events WHERE payload->>'source' = 'upstream'")
                )
            ).scalar_one()
        assert mirrored_events == 0
        ws = await connect(fed.district.ws_url, screen)
        try:
            await subscribe(ws, "689", ["today"])
            snap = await recv(ws)
            received = kpi_of(snap["kpis"]["today"], "dossier_received")
            assert received["value"] == 0
            assert "source" not in received
        finally:
            await ws.close()
