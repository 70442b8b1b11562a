"""The store's one upsert, as the tables define it, and the push routes' unit of work."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from ioc.auth import create_token
from ioc.collectors import store
from ioc.collectors.records import DossierRecord, ProcedureRecord, ReportRecord
from ioc.db import Database
from ioc.db.engine import asyncpg_dsn

from ..conftest import DatabaseFactory, ServerMaker
from .factories import dossier, new_source


def test_every_staged_column_is_read_from_the_record() -> None:
    """A column added to a record table is staged once its record carries an attribute of
    that name; until then this fails, naming the column."""
    for up, record in (
        (store.DOSSIERS, DossierRecord),
        (store.REPORTS, ReportRecord),
        (store.PROCEDURES, ProcedureRecord),
    ):
        # a field of the record, or a property computing it (`DossierRecord.supplements`)
        missing = [c for c in up.columns if not hasattr(record, c)]
        assert missing == [], up.table.name
        written = {"source", *up.columns, "id", "change_seq", "created_at", "updated_at"}
        assert {c.name for c in up.table.columns} <= written


async def test_push_answers_only_after_its_commit(
    databases: DatabaseFactory, make_server: ServerMaker
) -> None:
    """A push is the request's unit of work: a commit that fails is answered as an error,
    stores nothing (records nor dead-letters) and counts nothing in /metrics; a 2xx comes
    once records and dead-letters are both stored, and then the batch is counted."""
    url = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            """
            CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.source_id = 'REFUSED' THEN RAISE EXCEPTION 'refused at commit'; END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON dossiers
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();
            """
        )
        db = Database(url, pool_size=1)
        try:
            async with db.session() as session:
                token, _ = await create_token(
                    session, name="t-col", role="collector", unit_code="70"
                )
        finally:
            await db.close()
        server = await make_server(url=url)
        source = new_source()
        push = f"/api/v1/ingest/dossiers?source={source}"
        headers = {"Authorization": f"Bearer {token}"}
        counted = (
            f'ioc_ingest_records_total{{feed="dossiers",outcome="inserted",source="{source}"}}'
        )
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            refused = await http.post(push, json=[dossier("REFUSED"), "junk"], headers=headers)
            assert refused.status_code >= 500, refused.text
            assert await conn.fetchval("SELECT count(*) FROM dossiers") == 0
            assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0
            ok = await http.post(push, json=[dossier("D-1"), "junk"], headers=headers)
            assert ok.status_code == 200, ok.text
            assert await conn.fetchval("SELECT count(*) FROM dossiers") == 1
            assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 1
            for _ in range(50):  # counted by a task that runs once the answer has gone
                scraped = (await http.get("/metrics")).text
                if counted in scraped:
                    break
                await asyncio.sleep(0.05)
        lines = {
            line
            for line in scraped.splitlines()
            if line.startswith("ioc_ingest_records_total{") and f'source="{source}"' in line
        }
        rejected = counted.replace('"inserted"', '"rejected"')
        assert lines == {f"{counted} 1.0", f"{rejected} 1.0"}  # the refused batch: nothing
    finally:
        await conn.close()
