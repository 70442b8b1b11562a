"""The app answers health, readiness and auth checks over a real socket."""

from __future__ import annotations

import gc

import asyncpg
import httpx

from ioc.auth import create_token
from ioc.db import Database
from ioc.db.engine import asyncpg_dsn
from tests.conftest import DatabaseFactory, ServerMaker, TokenMaker


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


async def test_a_write_is_committed_before_it_is_acknowledged(
    databases: DatabaseFactory, make_server: ServerMaker
) -> None:
    """The request's unit of work commits before the response goes out: a commit that fails
    (here a deferred check that raises at COMMIT) is answered as an error, never as a 2xx of
    something that is not stored; and a 2xx comes only once the write is stored."""
    url = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            """
            CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.kpi_id = 'dossier_online_rate' THEN
                    RAISE EXCEPTION 'refused at commit';
                END IF;
                PERFORM pg_sleep(0.3);  -- a slow commit: the answer must still wait for it
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON kpi_targets
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();
            """
        )
        db = Database(url, pool_size=1)
        try:
            async with db.session() as session:
                admin, _ = await create_token(session, name="t-admin", role="admin", unit_code=None)
        finally:
            await db.close()
        server = await make_server(url=url)
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            refused = await http.put(
                "/api/v1/kpis/targets/689/dossier_online_rate",
                json={"target": 0.9},
                headers=headers,
            )
            assert refused.status_code >= 500, refused.text
            stored = await conn.fetchval(
                "SELECT count(*) FROM kpi_targets WHERE kpi_id = 'dossier_online_rate'"
            )
            assert stored == 0
            for i in range(3):  # a 200 means stored, however slow the commit
                target = round(0.5 + i / 100, 2)
                put = await http.put(
                    "/api/v1/kpis/targets/689/dossier_ontime_rate",
                    json={"target": target},
                    headers=headers,
                )
                assert put.status_code == 200, put.text
                assert target == await conn.fetchval(
                    "SELECT target FROM kpi_targets "
                    "WHERE unit_code = '689' AND kpi_id = 'dossier_ontime_rate'"
                )
    finally:
        await conn.close()


async def test_a_started_server_freezes_what_it_built(make_server: ServerMaker) -> None:
    """Once started, the objects built at start leave the collector's view (gc.freeze), so a
    full collection does not walk the catalogue and modules again and stall the loop."""
    gc.unfreeze()
    try:
        await make_server(gc_freeze_on_start=True)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
