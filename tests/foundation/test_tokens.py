"""Token lifecycle through the real CLI and the API: create → use → revoke → refused."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text

from ioc.db import Database
from tests.conftest import RunningServer


def ioc_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IOC_DATABASE_URL": database_url}
    env.pop("IOC_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_token_create_use_revoke(
    database_url: str, server: RunningServer, db: Database
) -> None:
    created = ioc_cli(
        database_url, "token", "create", "--role", "district", "--unit", "689", "--name", "scr"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ioc_") and len(token) > 40
    async with db.session() as s:
        stored = (
            await s.execute(text("SELECT token_hash, prefix FROM api_tokens WHERE name = 'scr'"))
        ).one()
    assert token.encode() not in bytes(stored.token_hash)
    assert len(bytes(stored.token_hash)) == 32

    async with httpx.AsyncClient(base_url=server.url) as http:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/api/v1/units/689", headers=headers)).status_code == 200
        listed = ioc_cli(database_url, "token", "list")
        assert "scr" in listed.stdout and token not in listed.stdout
        revoked = ioc_cli(database_url, "token", "revoke", stored.prefix)
        assert revoked.returncode == 0, revoked.stderr
        refused = await http.get("/api/v1/units/689", headers=headers)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]


def test_token_needs_known_unit_and_role(database_url: str) -> None:
    bad_unit = ioc_cli(
        database_url, "token", "create", "--role", "district", "--unit", "999", "--name", "x"
    )
    assert bad_unit.returncode == 1
    assert "999" in bad_unit.stderr
    bad_role = ioc_cli(
        database_url, "token", "create", "--role", "king", "--unit", "70", "--name", "x"
    )
    assert bad_role.returncode == 1
    assert "king" in bad_role.stderr


@pytest.mark.parametrize("role", ["collector", "operator"])
async def test_role_outside_permission_is_403(
    client: httpx.AsyncClient,
    make_token,
    role: str,  # type: ignore[no-untyped-def]
) -> None:
    token = await make_token(role, "70")
    response = await client.get("/api/v1/units/70", headers={"Authorization": f"Bearer {token}"})
    if role == "collector":
        assert response.status_code == 403
    else:
        assert response.status_code == 200
