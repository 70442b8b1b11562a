"""Personal data: only admin reads it unmasked, with a reason, each read logged; purge."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from ioc.db import Database
from ioc.db.engine import asyncpg_dsn
from ioc.privacy.service import purge
from tests.conftest import DatabaseFactory, ServerMaker

NAME, PHONE = "Nguyễn Thị Hồng Nhung", "0912345678"
# Record dates are relative to the real clock, so the purge command (real clock) agrees.
NOW = datetime.now(UTC)


async def add_dossier(
    conn: asyncpg.Connection,
    source_id: str,
    unit: str,
    *,
    finished: datetime | None,
    status: int = 4,
) -> None:
    raw = {"MaHoSo": source_id, "ChuHoSo": NAME, "SoDienThoai": PHONE, "MaTTHC": "1.0001"}
    await conn.execute(
        """
        INSERT INTO dossiers (source, source_id, procedure_code, channel, unit_code, unit_ref,
            received_at, finished_at, status, applicant_name, applicant_phone, applicant_email,
            source_updated_at, raw, change_seq)
        VALUES ('portal', $1, '1.0001', 2, $2, $2, $3, $4, $5, $6, $7, 'nhung@example.vn',
            $3, $8::jsonb, nextval('record_change_seq'))
        """,
        source_id,
        unit,
        NOW - timedelta(days=400),
        finished,
        status,
        NAME,
        PHONE,
        json.dumps(raw),
    )


async def add_report(
    conn: asyncpg.Connection, source_id: str, unit: str, *, resolved: datetime | None
) -> None:
    raw = {"id": source_id, "citizen_name": NAME, "citizen_phone": PHONE, "category": "water"}
    await conn.execute(
        """
        INSERT INTO reports (source, source_id, received_at, channel, category, unit_code,
            unit_ref, status, resolved_at, citizen_name, citizen_phone, source_updated_at, raw,
            change_seq)
        VALUES ('hotline', $1, $2, 'phone', 'water', $3, $3, $4, $5, $6, $7, $2, $8::jsonb,
            nextval('record_change_seq'))
        """,
        source_id,
        NOW - timedelta(days=400),
        unit,
        "resolved" if resolved else "received",
        resolved,
        NAME,
        PHONE,
        json.dumps(raw),
    )


@pytest.fixture
async def privacy_db(databases: DatabaseFactory) -> str:
    url = await databases.create()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await add_dossier(conn, "HS-OLD", "689", finished=NOW - timedelta(days=200), status=10)
        await add_dossier(conn, "HS-NEW", "689", finished=NOW - timedelta(days=10), status=10)
        await add_dossier(conn, "HS-OPEN", "688", finished=None)
        await add_report(conn, "R-OLD", "25432", resolved=NOW - timedelta(days=181))
        await add_report(conn, "R-OPEN", "689", resolved=None)
        await conn.execute(
            "INSERT INTO dead_letters (source, feed, content_type, payload, reasons, received_at) "
            "VALUES ('portal', 'dossiers', 'application/json', $1, '[]', $2), "
            "('portal', 'dossiers', 'application/json', '{}', '[]', $3)",
            json.dumps({"ChuHoSo": NAME}),
            NOW - timedelta(days=91),
            NOW - timedelta(days=1),
        )
    finally:
        await conn.close()
    return url


async def _token(url: str, role: str, unit: str | None) -> str:
    from ioc.auth import create_token

    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            secret, _ = await create_token(
                session, name=f"t-{role}-{unit}", role=role, unit_code=unit
            )
        return secret
    finally:
        await db.close()


async def test_only_admin_reads_unmasked_with_reason_and_each_read_is_logged(
    privacy_db: str, make_server: ServerMaker
) -> None:
    server = await make_server(url=privacy_db)
    admin = {"Authorization": f"Bearer {await _token(privacy_db, 'admin', None)}"}
    admin_689 = {"Authorization": f"Bearer {await _token(privacy_db, 'admin', '689')}"}
    operator = {"Authorization": f"Bearer {await _token(privacy_db, 'operator', '70')}"}
    head = {"Authorization": f"Bearer {await _token(privacy_db, 'department_head', '70')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        path = "/api/v1/personal-data/dossiers/HS-NEW"
        read = await http.get(path, params={"reason": "citizen complaint #42"}, headers=admin)
        assert read.status_code == 200, read.text
        assert read.json() == [
            {
                "kind": "dossier",
                "source": "portal",
                "id": "HS-NEW",
                "unit": "689",
                "personal_data": {
                    "applicant_name": NAME,
                    "applicant_phone": PHONE,
                    "applicant_email": "nhung@example.vn",
                    "applicant_address": None,
                },
            }
        ]
        assert (await http.get(path, headers=admin)).status_code == 422  # no reason
        for who in (operator, head):
            denied = await http.get(path, params={"reason": "just looking"}, headers=who)
            assert denied.status_code == 403
        # A unit-bound admin sees its subtree only.
        assert (
            await http.get(
                "/api/v1/personal-data/dossiers/HS-NEW",
                params={"reason": "call back"},
                headers=admin_689,
            )
        ).status_code == 200
        assert (
            await http.get(
                "/api/v1/personal-data/dossiers/HS-OPEN",
                params={"reason": "call back"},
                headers=admin_689,
            )
        ).status_code == 403
        assert (
            await http.get(
                "/api/v1/personal-data/reports/R-OPEN",
                params={"reason": "call back"},
                headers=admin_689,
            )
        ).json()[0]["personal_data"] == {"citizen_name": NAME, "citizen_phone": PHONE}
        assert (
            await http.get(
                "/api/v1/personal-data/reports/NOPE", params={"reason": "call back"}, headers=admin
            )
        ).status_code == 404
        log = (await http.get("/api/v1/personal-data/access-log", headers=admin)).json()
        assert [(e["record_kind"], e["record_key"], e["token_name"], e["reason"]) for e in log] == [
            ("report", "hotline:R-OPEN", "t-admin-689", "call back"),
            ("dossier", "portal:HS-NEW", "t-admin-689", "call back"),
            ("dossier", "portal:HS-NEW", "t-admin-None", "citizen complaint #42"),
        ]
        assert log[2]["fields"] == ["applicant_name", "applicant_phone", "applicant_email"]
        assert log[2]["route"] == "GET /api/v1/personal-data/dossiers/HS-NEW"
        # The 689 admin's view of the log holds only reads of records in 689.
        scoped = (await http.get("/api/v1/personal-data/access-log", headers=admin_689)).json()
        assert len(scoped) == 3
        assert (
            await http.get("/api/v1/personal-data/access-log", headers=operator)
        ).status_code == 403


async def test_purge_erases_only_what_is_past_retention(privacy_db: str) -> None:
    db = Database(privacy_db, pool_size=1)
    try:
        async with db.session() as session:
            dry = await purge(
                session,
                personal_data_days=180,
                dead_letter_days=90,
                access_log_days=730,
                now=NOW,
                dry_run=True,
            )
        assert dry.counts == {
            "dossiers": 1,
            "reports": 1,
            "dead_letters": 1,
            "personal_data_access_log": 0,
        }
        async with db.session() as session:
            done = await purge(
                session, personal_data_days=180, dead_letter_days=90, access_log_days=730, now=NOW
            )
        assert done.counts == dry.counts
        async with db.session() as session:
            again = await purge(
                session, personal_data_days=180, dead_letter_days=90, access_log_days=730, now=NOW
            )
        assert again.counts == {
            "dossiers": 0,
            "reports": 0,
            "dead_letters": 0,
            "personal_data_access_log": 0,
        }
    finally:
        await db.close()
    conn = await asyncpg.connect(asyncpg_dsn(privacy_db))
    try:
        rows = await conn.fetch(
            "SELECT source_id, applicant_name, applicant_phone, applicant_email, raw::text AS raw "
            "FROM dossiers ORDER BY source_id"
        )
        by_id = {r["source_id"]: r for r in rows}
        assert by_id["HS-OLD"]["applicant_name"] is None
        assert by_id["HS-OLD"]["applicant_email"] is None
        assert json.loads(by_id["HS-OLD"]["raw"]) == {"MaHoSo": "HS-OLD", "MaTTHC": "1.0001"}
        assert by_id["HS-NEW"]["applicant_name"] == NAME
        assert by_id["HS-OPEN"]["applicant_phone"] == PHONE
        report = await conn.fetchrow(
            "SELECT citizen_name, raw::text AS raw FROM reports WHERE source_id = 'R-OLD'"
        )
        assert report["citizen_name"] is None
        assert NAME not in report["raw"]
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 1
    finally:
        await conn.close()


async def test_purge_command_dry_run(privacy_db: str) -> None:
    env = {**os.environ, "IOC_DATABASE_URL": privacy_db}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ioc",
        "privacy",
        "purge",
        "--dry-run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    counts = {
        table.strip(): int(n)
        for table, n in (line.split(" would erase ") for line in out.decode().splitlines())
    }
    assert counts == {"dossiers": 1, "reports": 1, "dead_letters": 1, "personal_data_access_log": 0}
