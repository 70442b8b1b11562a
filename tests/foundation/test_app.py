"""The app answers health, readiness and auth checks over a real socket."""

from __future__ import annotations

import httpx

from tests.conftest import TokenMaker


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True


async def test_missing_and_bad_token_are_401_problem_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/units/70")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 401
    bad = await client.get("/api/v1/units/70", headers={"Authorization": "Bearer ioc_nope"})
    assert bad.status_code == 401
    assert "unknown" in bad.json()["detail"]


async def test_scope_403_outside_unit(client: httpx.AsyncClient, make_token: TokenMaker) -> None:
    token = await make_token("district", "689")
    headers = {"Authorization": f"Bearer {token}"}
    own = await client.get("/api/v1/units/689", headers=headers)
    assert own.status_code == 200
    assert own.json()["name"] == "Thành phố Đồng Xoài"
    assert len(own.json()["children"]) == 8
    other = await client.get("/api/v1/units/688", headers=headers)
    assert other.status_code == 403
    assert other.json()["type"].endswith("out-of-scope")
    province = await client.get("/api/v1/units/70", headers=headers)
    assert province.status_code == 403
