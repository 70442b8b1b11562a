"""Two ioc instances: the district's own `/ws` shows the province's KPIs for its unit and
children — first in the snapshot, then live — marked as mirrored; scope holds on both ends."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx
from sqlalchemy import text

from ioc.webhooks import signature_headers
from tests.conftest import DatabaseFactory
from tests.feeds.conftest import Federation, eventually, todays_dossier, token, two_instances
from tests.live.conftest import connect, recv, subscribe


async def province_value(fed: Federation, unit: str, kpi: str, expected: float) -> bool:
    """Whether the province's own engine shows `expected` for `kpi` of `unit` today."""
    admin = await token(fed.province_db, "admin", None)
    async with httpx.AsyncClient(timeout=10) as http:
        got = await http.get(
            f"{fed.province.url}/api/v1/kpis",
            params={"unit": unit, "window": "today"},
            headers={"Authorization": f"Bearer {admin}"},
        )
    return bool(kpi_of(got.json()["kpis"], kpi)["value"] == expected)


async def ioc_cli(*args: str, env: dict[str, str]) -> str:
    """Run the `ioc` command in its own process (without blocking the servers' loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ioc",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def api_kpis(url: str, screen: str, unit: str = "689") -> dict[str, Any]:
    """`GET /api/v1/kpis?unit=&window=today&children=true` of an instance."""
    async with httpx.AsyncClient(timeout=10) as http:
        got = await http.get(
            f"{url}/api/v1/kpis",
            params={"unit": unit, "window": "today", "children": "true"},
            headers={"Authorization": f"Bearer {screen}"},
        )
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


async def api_agrees_with_screen(fed: Federation, screen: str) -> dict[str, Any]:
    """The district's `GET /api/v1/kpis` for 689 (today, children), once it equals the
    snapshot a fresh `/ws` screen of 689 gets at the same moment (a delivery landing between
    the reads is waited out), KPIs and children alike (`as_of` is each read's own time)."""
    agreed: dict[str, Any] = {}

    async def same() -> bool:
        before = await api_kpis(fed.district.url, screen)
        ws = await connect(fed.district.ws_url, screen)
        try:
            await subscribe(ws, "689", ["today"])
            snap = await recv(ws)
        finally:
            await ws.close()
        after = await api_kpis(fed.district.url, screen)
        agreed.update(after)
        return (
            (before["kpis"], before["children"]) == (after["kpis"], after["children"])
            and after["kpis"] == snap["kpis"]["today"]
            and after["children"] == snap["children"]["today"]
        )

    await eventually(same, what="the district's GET /api/v1/kpis equal to its screen's")
    return agreed


def kpi_of(kpis: list[dict[str, Any]], kpi: str) -> dict[str, Any]:
    return next(k for k in kpis if k["id"] == kpi)


def child_kpi(children: list[dict[str, Any]], unit: str, kpi: str) -> dict[str, Any]:
    return kpi_of(next(c for c in children if c["unit"] == unit)["kpis"], kpi)


async def test_district_screens_show_the_province_values_live(databases: DatabaseFactory) -> None:
    async with two_instances(databases, federation_unit="689") as fed:
        await fed.province_engine_ready()
        # Before the district subscribes: a dossier at Phường Tân Đồng (25198), in person.
        await fed.ingest_dossiers(todays_dossier("FED-0", "25198", channel=1))
        await eventually(
            lambda: province_value(fed, "25198", "dossier_received", 1),
            what="the province's engine",
        )
        await fed.subscribe("689", ["kpi"])
        # Two dossiers for Phường Tân Phú (25195, in Đồng Xoài 689), one of them online.
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

        await eventually(lambda: mirrored(3.0), what="the province's values at the district")

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
                "value": 3.0,
                "numerator": 3.0,
                "denominator": None,
                "target": None,
                "status": "ok",
                "source": "upstream",
            }
            online = kpi_of(today, "dossier_online_rate")
            assert (online["numerator"], online["denominator"]) == (1, 3)
            assert online["source"] == "upstream"
            tan_phu = child_kpi(snap["children"]["today"], "25195", "dossier_received")
            assert (tan_phu["value"], tan_phu["source"]) == (2.0, "upstream")
            # Tân Đồng has not changed since the district subscribed, and a feed carries
            # changes only: the district's own (empty) value, unmarked...
            tan_dong = child_kpi(snap["children"]["today"], "25198", "dossier_received")
            assert (tan_dong["value"], "source" in tan_dong) == (0, False)
            # The district's REST API gives what its screen shows: the same overlay.
            api = await api_agrees_with_screen(fed, screen)
            assert kpi_of(api["kpis"], "dossier_received") == kpi_of(today, "dossier_received")
            assert kpi_of(api["kpis"], "dossier_online_rate")["source"] == "upstream"
            api_tan_phu = child_kpi(api["children"], "25195", "dossier_received")
            assert (api_tan_phu["value"], api_tan_phu["source"]) == (2.0, "upstream")
            api_tan_dong = child_kpi(api["children"], "25198", "dossier_received")
            assert (api_tan_dong["value"], "source" in api_tan_dong) == (0, False)
            # The province's own API is unchanged: its values, no `source` anywhere.
            at_province = await api_kpis(
                fed.province.url, await token(fed.province_db, "operator", "689")
            )
            assert kpi_of(at_province["kpis"], "dossier_received")["value"] == 3
            assert all(
                "source" not in k
                for k in at_province["kpis"]
                + [k for c in at_province["children"] for k in c["kpis"]]
            )
            # ... until `ioc federation seed` fills in the province's current values; open
            # screens get them at once, as events.
            upstream_token = await token(fed.province_db, "district", "689")
            seeded = await ioc_cli(
                "federation",
                "seed",
                "--upstream",
                fed.province.url,
                env={
                    "IOC_DATABASE_URL": fed.district_db.url,
                    "IOC_FEDERATION_UNIT": "689",
                    "IOC_UPSTREAM_TOKEN": upstream_token,
                },
            )
            assert seeded.startswith("seeded "), seeded
            assert int(seeded.split()[1]) > 0
            event = await recv(ws)
            while (event["unit"], event["kpi"]["id"]) != ("25198", "dossier_received"):
                assert event["type"] == "kpi" and event["kpi"]["source"] == "upstream", event
                event = await recv(ws)
            assert (event["kpi"]["value"], event["kpi"]["source"]) == (1, "upstream")
            # The seed never replaces what the feed brought (689 stays at 3, pushed).
            async with fed.district_db.session() as session:
                kept = (
                    await session.execute(
                        text(
                            "SELECT value, upstream_seq FROM federation_kpis WHERE unit_code = "
                            "'689' AND time_window = 'today' AND kpi_id = 'dossier_received'"
                        )
                    )
                ).one()
            assert kept.value == 3 and kept.upstream_seq > 0

            # A fourth dossier at the province (online) reaches the district's screen live.
            await fed.ingest_dossiers(todays_dossier("FED-3", "25195", channel=2))
            seen: dict[str, dict[str, Any]] = {}
            while not (
                seen.get("dossier_received", {}).get("kpi", {}).get("value") == 4
                and seen.get("dossier_online_rate", {}).get("kpi", {}).get("value") == 0.5
            ):
                event = await recv(ws)
                assert event["type"] == "kpi", event
                assert event["seq"] > snap["seq"]
                assert event["window"] == "today"
                assert event["kpi"]["source"] == "upstream"
                if event["unit"] == "689":
                    seen[event["kpi"]["id"]] = event
            received = seen["dossier_received"]
            assert received["kpi"]["numerator"] == 4
            assert received["kpi"]["status"] == "ok"
            # ... and the API follows: the seeded and the pushed values, as on the screen.
            api = await api_agrees_with_screen(fed, screen)
            assert kpi_of(api["kpis"], "dossier_received")["value"] == 4
            api_tan_dong = child_kpi(api["children"], "25198", "dossier_received")
            assert (api_tan_dong["value"], api_tan_dong["source"]) == (1, "upstream")
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
        assert logged["kpi"]["value"] == 4
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
    databases: DatabaseFactory,
) -> None:
    """`IOC_FEDERATION_KPIS=local`: the inbox still stores the upstream's values (REST), but
    publishes no local event and the snapshot shows only the district's own engine."""
    async with two_instances(databases, federation_kpis="local") as fed:
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
        # The REST API neither: the district's own values, equal to its screen's.
        api = await api_agrees_with_screen(fed, screen)
        assert kpi_of(api["kpis"], "dossier_received")["value"] == 0
        assert all(
            "source" not in k for k in api["kpis"] + [k for c in api["children"] for k in c["kpis"]]
        )
