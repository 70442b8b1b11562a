"""The subscriptions API: scope, roles, URL guard, the secret shown once; signing vector."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ioc.errors import Unauthorized
from ioc.webhooks import sign, signature_headers
from tests.conftest import ServerMaker, TokenMaker
from tests.webhooks_reference import verify

HOOK = "http://127.0.0.1:9/hook"


def test_standard_webhooks_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    headers = signature_headers([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", body, 1614265330)
    assert headers["webhook-signature"] == expected
    verify(secret, headers, body, now=1614265330 + 299)
    with pytest.raises(Unauthorized):
        verify(secret, headers, body, now=1614265330 + 301)  # outside ±5 min
    with pytest.raises(Unauthorized):
        verify(secret, headers, b'{"test": 2432232315}', now=1614265330)


async def test_district_subscribes_only_within_its_unit(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(feeds_enabled=False)
    district = {"Authorization": f"Bearer {await make_token('district', '689')}"}
    other = {"Authorization": f"Bearer {await make_token('district', '688')}"}
    operator = {"Authorization": f"Bearer {await make_token('operator', '689')}"}
    admin = {"Authorization": f"Bearer {await make_token('admin', None)}"}
    body: dict[str, Any] = {"url": HOOK, "unit": "689", "topics": ["kpi", "dossier"]}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        created = await http.post("/api/v1/subscriptions", json=body, headers=district)
        assert created.status_code == 201, created.text
        sub = created.json()
        assert sub["secret"].startswith("whsec_")
        assert (sub["unit"], sub["topics"], sub["status"]) == ("689", ["dossier", "kpi"], "active")
        commune = await http.post(
            "/api/v1/subscriptions", json={**body, "unit": "25195"}, headers=district
        )
        assert commune.status_code == 201
        for unit in ("688", "70"):
            refused = await http.post(
                "/api/v1/subscriptions", json={**body, "unit": unit}, headers=district
            )
            assert refused.status_code == 403
            assert refused.json()["type"] == "/problems/out-of-scope"
        by_operator = await http.post("/api/v1/subscriptions", json=body, headers=operator)
        assert by_operator.status_code == 403
        # the secret is never shown again
        read = await http.get(f"/api/v1/subscriptions/{sub['id']}", headers=district)
        assert read.status_code == 200
        assert "secret" not in read.json()
        listed = await http.get("/api/v1/subscriptions", headers=district)
        assert [s["id"] for s in listed.json()] == [sub["id"], commune.json()["id"]]
        assert all("secret" not in s for s in listed.json())
        # another district neither sees nor changes it
        assert (await http.get("/api/v1/subscriptions", headers=other)).json() == []
        assert (
            await http.get(f"/api/v1/subscriptions/{sub['id']}", headers=other)
        ).status_code == 403
        patched = await http.patch(
            f"/api/v1/subscriptions/{sub['id']}", json={"topics": ["alert"]}, headers=other
        )
        assert patched.status_code == 403
        deleted = await http.delete(f"/api/v1/subscriptions/{sub['id']}", headers=other)
        assert deleted.status_code == 403
        # admin sees everything and may subscribe anywhere
        ids = {s["id"] for s in (await http.get("/api/v1/subscriptions", headers=admin)).json()}
        assert {sub["id"], commune.json()["id"]} <= ids
        anywhere = await http.post(
            "/api/v1/subscriptions", json={**body, "unit": "70"}, headers=admin
        )
        assert anywhere.status_code == 201
        # bad input: unknown topic, filters without their topic, unknown unit
        bad = await http.post(
            "/api/v1/subscriptions", json={**body, "topics": ["weather"]}, headers=district
        )
        assert bad.status_code == 422
        bad_filter = await http.post(
            "/api/v1/subscriptions",
            json={**body, "topics": ["kpi"], "filters": {"severities": ["critical"]}},
            headers=district,
        )
        assert bad_filter.status_code == 422
        unknown = await http.post(
            "/api/v1/subscriptions", json={**body, "unit": "99999"}, headers=admin
        )
        assert unknown.status_code == 422
        for target in (sub["id"], commune.json()["id"], anywhere.json()["id"]):
            await http.delete(f"/api/v1/subscriptions/{target}", headers=admin)


FORBIDDEN = [
    "http://127.0.0.1:8080/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://localhost/hook",
    "ftp://example.org/hook",
    "file:///etc/passwd",
]


async def test_forbidden_target_urls_are_refused(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(webhooks_allow_private=False, feeds_enabled=False)
    district = {"Authorization": f"Bearer {await make_token('district', '689')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for url in FORBIDDEN:
            resp = await http.post(
                "/api/v1/subscriptions",
                json={"url": url, "unit": "689", "topics": ["kpi"]},
                headers=district,
            )
            assert resp.status_code == 422, (url, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
        listed = await http.get("/api/v1/subscriptions", headers=district)
        assert listed.json() == []
