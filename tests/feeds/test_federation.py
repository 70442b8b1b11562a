"""Two ioc instances: a district instance mirrors the provincial feed for its unit, and its
inbox refuses forged and replayed deliveries."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import text

from ioc.webhooks import new_secret, signature_headers
from tests.conftest import DatabaseFactory
from tests.feeds.conftest import (
    eventually,
    kpi_event,
    publish_events,
    token,
    two_instances,
    unique_kpi,
)


async def test_district_instance_mirrors_the_province_and_refuses_forgeries(
    databases: DatabaseFactory, database_url: str
) -> None:
    # The province runs on the run's shared database; the district gets its own.
    async with (
        two_instances(databases, province_url=database_url) as fed,
        httpx.AsyncClient(timeout=10) as http,
    ):
        province, district, province_db = fed.province, fed.district, fed.province_db
        district_db, shared, inbox = fed.district_db, fed.secret, fed.inbox
        ka, kb = unique_kpi(), unique_kpi()
        sub = await fed.subscribe("689", ["kpi"], filters={"kpis": [ka, kb]})
        seqs = await publish_events(
            province_db,
            [
                kpi_event("689", ka, 0.42),
                kpi_event("688", ka, 0.99),  # not the district's
                kpi_event("25195", kb, 17),
                kpi_event("689", ka, 0.58),  # newer value wins
                kpi_event("689", ka, 0.33, window="month"),
            ],
        )
        local = {"Authorization": f"Bearer {await token(district_db, 'district', '689')}"}

        async def mirrored() -> bool:
            resp = await http.get(
                f"{district.url}/api/v1/federation/kpis",
                params={"unit": "689"},
                headers=local,
            )
            return len(resp.json()["kpis"]) == 2

        await eventually(mirrored, what="the district mirror")
        got = (
            await http.get(
                f"{district.url}/api/v1/federation/kpis",
                params={"unit": "689"},
                headers=local,
            )
        ).json()
        assert [(k["window"], k["id"], k["value"], k["upstream_seq"]) for k in got["kpis"]] == [
            ("month", ka, 0.33, seqs[4]),
            ("today", ka, 0.58, seqs[3]),
        ]
        commune = await http.get(
            f"{district.url}/api/v1/federation/kpis",
            params={"unit": "25195", "window": "today"},
            headers=local,
        )
        assert [(k["id"], k["value"]) for k in commune.json()["kpis"]] == [(kb, 17.0)]
        elsewhere = await http.get(
            f"{district.url}/api/v1/federation/kpis", params={"unit": "688"}, headers=local
        )
        assert elsewhere.status_code == 403
        async with district_db.session() as session:
            stored = (
                (
                    await session.execute(
                        text("SELECT upstream_seq FROM federation_events ORDER BY 1")
                    )
                )
                .scalars()
                .all()
            )
        assert stored == [seqs[0], seqs[2], seqs[3], seqs[4]]

        # Forged: signed with another secret.
        body = json.dumps(
            {"type": "kpi", "seq": 10_000, "unit": "689", "data": forged_kpi(ka, 0.0)}
        ).encode()
        forged = signature_headers([new_secret()], "msg_forged", body)
        resp = await http.post(inbox, content=body, headers=forged)
        assert resp.status_code == 401
        # Replayed outside the window: a genuine signature from 6 minutes ago.
        stale = signature_headers([shared], "msg_stale", body, int(time.time()) - 360)
        resp = await http.post(inbox, content=body, headers=stale)
        assert resp.status_code == 401
        # Replayed inside the window with an id already accepted: ignored.
        seen_id = f"msg_{sub['id'].replace('-', '')}_{seqs[3]}"
        replayed = signature_headers([shared], seen_id, body)
        resp = await http.post(inbox, content=body, headers=replayed)
        assert resp.status_code == 200
        assert resp.json() == {"accepted": True, "duplicate": True, "seq": 10_000}
        # Tampered body under a valid header set.
        resp = await http.post(
            inbox,
            content=body + b" ",
            headers=signature_headers([shared], "msg_tampered", body),
        )
        assert resp.status_code == 401
        after = (
            await http.get(
                f"{district.url}/api/v1/federation/kpis",
                params={"unit": "689", "window": "today"},
                headers=local,
            )
        ).json()
        assert [(k["id"], k["value"]) for k in after["kpis"]] == [(ka, 0.58)]
        # A province instance without IOC_FEDERATION_SECRET has no inbox.
        closed = await http.post(
            f"{province.url}/api/v1/federation/inbox", content=body, headers=replayed
        )
        assert closed.status_code == 503


def forged_kpi(kpi: str, value: float) -> dict[str, Any]:
    return {
        "unit": "689",
        "window": "today",
        "as_of": "2026-11-27T10:00:00+07:00",
        "kpi": {"id": kpi, "value": value, "status": "bad"},
    }
