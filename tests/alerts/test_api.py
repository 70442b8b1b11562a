"""The alert API over a real socket: rules CRUD and validation, scope, alerts, ack, silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ioc.db import Database
from tests.alerts.conftest import alert_overrides, eventually, publish_kpi, token
from tests.conftest import ServerMaker

RULE: dict[str, Any] = {
    "name": "Hồ sơ đúng hạn thấp",
    "kpi": "dossier_ontime_rate",
    "unit": "689",
    "window": "month",
    "op": "<",
    "threshold": 0.95,
    "clear_threshold": 0.97,
    "for_seconds": 0,
    "severity": "critical",
    "recipients": [{"channel": "email", "to": "truongphong@binhphuoc.gov.vn"}],
    "repeat_seconds": 3600,
}


async def test_rule_validation_answers_422_with_field_errors(
    adb: Database, alerts_url: str, make_server: ServerMaker
) -> None:
    server = await make_server(url=alerts_url, **alert_overrides())
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    async with httpx.AsyncClient(base_url=server.url, headers=head, timeout=30) as http:
        bad = await http.post(
            "/api/v1/alert-rules",
            json={**RULE, "kpi": "dossier_happiness", "clear_threshold": 0.90},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        fields = sorted(e["field"] for e in bad.json()["errors"])
        assert fields == ["clear_threshold", "kpi"]
        # another unit is an authorisation answer (docs/api.md §3), even with other bad fields
        outside = await http.post(
            "/api/v1/alert-rules",
            json={**RULE, "kpi": "dossier_happiness", "unit": "688", "clear_threshold": 0.90},
        )
        assert outside.status_code == 403
        assert outside.headers["content-type"] == "application/problem+json"
        assert outside.json()["type"].endswith("/out-of-scope")
        unknown = await http.post("/api/v1/alert-rules", json={**RULE, "unit": "99999"})
        assert unknown.status_code == 422
        assert [e["field"] for e in unknown.json()["errors"]] == ["unit"]
        above = await http.post(
            "/api/v1/alert-rules",
            json={
                **RULE,
                "op": ">",
                "threshold": 5,
                "clear_threshold": 6,
                "kpi": "report_received",
            },
        )
        assert [e["field"] for e in above.json()["errors"]] == ["clear_threshold"]
        schema = await http.post("/api/v1/alert-rules", json={**RULE, "op": "=="})
        assert schema.status_code == 422
        assert schema.json()["errors"][0]["field"] == "body.op"
        no_address = await http.post(
            "/api/v1/alert-rules", json={**RULE, "recipients": [{"channel": "email"}]}
        )
        assert no_address.status_code == 422
    operator = await token(adb, "operator", "689", "Trực ban")
    async with httpx.AsyncClient(base_url=server.url, headers=operator, timeout=30) as http:
        assert (await http.post("/api/v1/alert-rules", json=RULE)).status_code == 403


async def test_rule_crud_within_scope(
    adb: Database, alerts_url: str, make_server: ServerMaker
) -> None:
    server = await make_server(url=alerts_url, **alert_overrides())
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    other = await token(adb, "department_head", "688", "Trưởng phòng Phước Long")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        created = await http.post(
            "/api/v1/alert-rules", json={**RULE, "each_child": True}, headers=head
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["webhook_secret"].startswith("whsec_")
        rule = body["rule"]
        assert (rule["unit"], rule["each_child"], rule["created_by"]) == (
            "689",
            True,
            "Trưởng phòng Đồng Xoài",
        )
        rule_id = rule["id"]
        mine = (await http.get("/api/v1/alert-rules", headers=head)).json()
        assert [r["id"] for r in mine] == [rule_id]
        assert (await http.get("/api/v1/alert-rules", headers=other)).json() == []
        assert (await http.get(f"/api/v1/alert-rules/{rule_id}", headers=other)).status_code == 403
        patched = await http.patch(
            f"/api/v1/alert-rules/{rule_id}",
            json={"threshold": 0.9, "clear_threshold": 0.92},
            headers=head,
        )
        assert patched.status_code == 200
        assert (patched.json()["threshold"], patched.json()["clear_threshold"]) == (0.9, 0.92)
        wrong = await http.patch(
            f"/api/v1/alert-rules/{rule_id}", json={"clear_threshold": 0.5}, headers=head
        )
        assert wrong.status_code == 422
        assert [e["field"] for e in wrong.json()["errors"]] == ["clear_threshold"]
        moved_out = await http.patch(
            f"/api/v1/alert-rules/{rule_id}", json={"unit": "688"}, headers=head
        )
        assert moved_out.status_code == 403
        assert moved_out.json()["type"].endswith("/out-of-scope")
        assert (await http.get(f"/api/v1/alert-rules/{rule_id}", headers=head)).json()[
            "unit"
        ] == "689"
        assert (
            await http.delete(f"/api/v1/alert-rules/{rule_id}", headers=other)
        ).status_code == 403
        assert (
            await http.delete(f"/api/v1/alert-rules/{rule_id}", headers=head)
        ).status_code == 204
        assert (await http.get(f"/api/v1/alert-rules/{rule_id}", headers=head)).status_code == 404


async def test_alerts_filters_ack_and_history(
    adb: Database, alerts_url: str, make_server: ServerMaker
) -> None:
    server = await make_server(url=alerts_url, **alert_overrides())
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    operator = await token(adb, "operator", "70", "Trực ban tỉnh")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        created = await http.post("/api/v1/alert-rules", json=RULE, headers=head)
        assert created.status_code == 201

        # Before any KPI event the engine has no dossiers for 689: the alert shows no_data.
        async def no_data() -> list[dict[str, Any]]:
            response = await http.get("/api/v1/alerts?state=no_data", headers=operator)
            return list(response.json())

        assert [a["unit"] for a in await eventually(no_data)] == ["689"]
        await publish_kpi(adb, "dossier_ontime_rate", "689", 0.9103)

        async def firing_alerts() -> list[dict[str, Any]]:
            response = await http.get("/api/v1/alerts?state=firing", headers=operator)
            return list(response.json())

        firing = await eventually(firing_alerts)
        assert [(a["unit"], a["value"], a["state"]) for a in firing] == [("689", 0.9103, "firing")]
        alert_id = firing[0]["id"]
        assert (await http.get("/api/v1/alerts?severity=info", headers=operator)).json() == []
        assert (await http.get("/api/v1/alerts?unit=688", headers=operator)).json() == []
        recent = await http.get(
            "/api/v1/alerts",
            params={"since": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()},
            headers=operator,
        )
        assert [a["id"] for a in recent.json()] == [alert_id]
        later = await http.get(
            "/api/v1/alerts",
            params={"since": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()},
            headers=operator,
        )
        assert later.json() == []
        assert (
            await http.post(f"/api/v1/alerts/{alert_id}/ack", json={}, headers=operator)
        ).status_code == 403
        acked = await http.post(
            f"/api/v1/alerts/{alert_id}/ack", json={"comment": "Đã giao phòng xử lý"}, headers=head
        )
        assert acked.status_code == 200
        assert (
            acked.json()["state"],
            acked.json()["acknowledged_by"],
            acked.json()["ack_comment"],
        ) == (
            "acknowledged",
            "Trưởng phòng Đồng Xoài",
            "Đã giao phòng xử lý",
        )
        again = await http.post(f"/api/v1/alerts/{alert_id}/ack", json={}, headers=head)
        assert again.status_code == 409
        opened = await http.get("/api/v1/alerts?state=open", headers=operator)
        assert [a["state"] for a in opened.json()] == ["acknowledged"]
        detail = (await http.get(f"/api/v1/alerts/{alert_id}", headers=operator)).json()
        assert [(t["from_state"], t["to_state"]) for t in detail["transitions"]] == [
            ("ok", "no_data"),
            ("no_data", "firing"),
            ("firing", "acknowledged"),
        ]
        assert detail["transitions"][2]["actor"] == "Trưởng phòng Đồng Xoài"
        assert [(n["kind"], n["channel"]) for n in detail["notifications"]] == [("firing", "email")]
        history = (await http.get("/api/v1/alerts/history?unit=689", headers=operator)).json()
        assert [h["to_state"] for h in history] == ["acknowledged", "firing", "no_data"]
        other = await token(adb, "department_head", "688", "Trưởng phòng Phước Long")
        assert (await http.get(f"/api/v1/alerts/{alert_id}", headers=other)).status_code == 403
        assert (await http.get("/api/v1/alerts?unit=689", headers=other)).status_code == 403


async def test_silences_api(adb: Database, alerts_url: str, make_server: ServerMaker) -> None:
    server = await make_server(url=alerts_url, **alert_overrides())
    head = await token(adb, "department_head", "689", "Trưởng phòng Đồng Xoài")
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    async with httpx.AsyncClient(base_url=server.url, headers=head, timeout=30) as http:
        created = await http.post(
            "/api/v1/silences", json={"unit": "25195", "until": until, "reason": "Bảo trì hệ thống"}
        )
        assert created.status_code == 201, created.text
        silence = created.json()
        assert (silence["unit"], silence["active"], silence["created_by"]) == (
            "25195",
            True,
            "Trưởng phòng Đồng Xoài",
        )
        outside = await http.post(
            "/api/v1/silences", json={"unit": "688", "until": until, "reason": "x"}
        )
        assert outside.status_code == 403
        empty = await http.post("/api/v1/silences", json={"until": until, "reason": "x"})
        assert empty.status_code == 422
        past = await http.post(
            "/api/v1/silences",
            json={"unit": "689", "until": "2020-01-01T00:00:00+07:00", "reason": "x"},
        )
        assert past.status_code == 422
        listed = (await http.get("/api/v1/silences")).json()
        assert [s["id"] for s in listed] == [silence["id"]]
        expired = await http.delete(f"/api/v1/silences/{silence['id']}")
        assert expired.status_code == 200
        assert expired.json()["active"] is False
        assert expired.json()["expired_by"] == "Trưởng phòng Đồng Xoài"
        assert (await http.get("/api/v1/silences")).json() == []
        assert len((await http.get("/api/v1/silences?all=true")).json()) == 1
