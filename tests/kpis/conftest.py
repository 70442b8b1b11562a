"""Fixtures of the KPI tests: an isolated database per module and record factories that write
source rows as the ingest would (stamping `change_seq` from `record_change_seq`)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.db import Database
from ioc.events import last_seq, read_since
from ioc.kpis import run_round
from ioc.kpis.rounds import MemoryBox, emit_round, fold_journal
from ioc.localtime import LOCAL_TZ

_ids = itertools.count(1)
_RUN = uuid.uuid4().hex[:8]  # source ids stay unique if a database is reused


def at(y: int, m: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A local (Asia/Ho_Chi_Minh) moment."""
    return datetime(y, m, d, h, mi, s, tzinfo=LOCAL_TZ)


@pytest.fixture(scope="package")
async def kdb(databases: Any) -> AsyncIterator[Database]:
    """A fresh migrated database with the demo province, shared by the KPI tests (each test
    module files its records under its own communes, so their figures do not mix)."""
    url = await databases.create()
    database = Database(url, pool_size=4)
    yield database
    await database.close()


@pytest.fixture(scope="package")
async def live_db(databases: Any) -> AsyncIterator[Database]:
    """A database for the tests that run real servers and the CLI at the real current time."""
    url = await databases.create()
    database = Database(url, pool_size=4)
    yield database
    await database.close()


@pytest.fixture(scope="module")
async def own_db(databases: Any) -> AsyncIterator[Database]:
    """A database for this module alone (for tests that truncate or reshape the unit tree)."""
    url = await databases.create()
    database = Database(url, pool_size=4)
    yield database
    await database.close()


_DOSSIER = {
    "procedure_code": "P1",
    "channel": 1,
    "due_at": None,
    "finished_at": None,
    "status": 2,
    "digitized": False,
    "paid_online": False,
}


async def add_dossier(s: AsyncSession, unit: str, received_at: datetime, **fields: Any) -> int:
    """Other columns (the 766 facts: `supplement_count`, `accepted`…) may be given too."""
    row = {**_DOSSIER, **fields}
    if row["finished_at"] is not None and "status" not in fields:
        row["status"] = 9
    extra = [k for k in row if k not in _DOSSIER]
    columns = "".join(f", {k}" for k in extra)
    values = "".join(f", :{k}" for k in extra)
    result = await s.execute(
        text(
            f"""
            INSERT INTO dossiers (source, source_id, procedure_code, channel, unit_code,
                unit_ref, received_at, due_at, finished_at, status, digitized, paid_online,
                source_updated_at, raw, change_seq{columns})
            VALUES ('t', :sid, :procedure_code, :channel, :unit, :unit, :received_at, :due_at,
                :finished_at, :status, :digitized, :paid_online, now(), '{{}}',
                nextval('record_change_seq'){values})
            RETURNING id
            """
        ),
        {"sid": f"d{_RUN}-{next(_ids)}", "unit": unit, "received_at": received_at, **row},
    )
    return int(result.scalar_one())


async def update_dossier(s: AsyncSession, dossier_id: int, **fields: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    await s.execute(
        text(
            f"UPDATE dossiers SET {sets}, change_seq = nextval('record_change_seq') WHERE id = :id"
        ),
        {"id": dossier_id, **fields},
    )


_REPORT = {
    "status": "received",
    "due_at": None,
    "first_response_at": None,
    "resolved_at": None,
}


async def add_report(s: AsyncSession, unit: str, received_at: datetime, **fields: Any) -> int:
    """Other columns (`rating`, `rejected_at`) may be given too."""
    row = {**_REPORT, **fields}
    extra = [k for k in row if k not in _REPORT]
    columns = "".join(f", {k}" for k in extra)
    values = "".join(f", :{k}" for k in extra)
    result = await s.execute(
        text(
            f"""
            INSERT INTO reports (source, source_id, received_at, channel, category, unit_code,
                unit_ref, status, due_at, first_response_at, resolved_at, source_updated_at,
                raw, change_seq{columns})
            VALUES ('t', :sid, :received_at, 'phone', 'other', :unit, :unit, :status, :due_at,
                :first_response_at, :resolved_at, now(), '{{}}', nextval('record_change_seq')
                {values})
            RETURNING id
            """
        ),
        {"sid": f"r{_RUN}-{next(_ids)}", "unit": unit, "received_at": received_at, **row},
    )
    return int(result.scalar_one())


async def update_report(s: AsyncSession, report_id: int, **fields: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    await s.execute(
        text(
            f"UPDATE reports SET {sets}, change_seq = nextval('record_change_seq') WHERE id = :id"
        ),
        {"id": report_id, **fields},
    )


async def add_document(
    s: AsyncSession,
    sender_unit: str | None,
    sent_at: datetime,
    recipients: list[tuple[str | None, datetime | None]],
    *,
    electronic: bool = True,
    due_on: date | None = None,
    completed_at: datetime | None = None,
) -> int:
    """`recipients`: (unit code, completed_at) per recipient organ."""
    n = next(_ids)
    result = await s.execute(
        text(
            """
            INSERT INTO documents (source, document_id, sender_organ, unit_code, due_on,
                electronic, completed_at, sent_at, raw_xml, change_seq)
            VALUES ('t', :doc, 'organ-s', :unit, :due_on, :electronic, :completed_at,
                :sent_at, '<x/>', nextval('record_change_seq'))
            RETURNING id
            """
        ),
        {
            "doc": f"doc{_RUN}-{n}",
            "unit": sender_unit,
            "due_on": due_on,
            "electronic": electronic,
            "completed_at": completed_at,
            "sent_at": sent_at,
        },
    )
    pk = int(result.scalar_one())
    for i, (unit, done) in enumerate(recipients):
        await s.execute(
            text(
                "INSERT INTO document_recipients (document_pk, organ_id, unit_code, "
                "completed_at) VALUES (:pk, :organ, :unit, :done)"
            ),
            {"pk": pk, "organ": f"organ-{n}-{i}", "unit": unit, "done": done},
        )
    return pk


async def complete_recipient(s: AsyncSession, pk: int, unit: str, done: datetime) -> None:
    await s.execute(
        text(
            "UPDATE document_recipients SET completed_at = :done "
            "WHERE document_pk = :pk AND unit_code = :unit"
        ),
        {"pk": pk, "unit": unit, "done": done},
    )
    await s.execute(
        text("UPDATE documents SET change_seq = nextval('record_change_seq') WHERE id = :pk"),
        {"pk": pk},
    )


async def add_agency_report(
    s: AsyncSession,
    unit: str,
    requested_at: datetime,
    due_at: datetime,
    *,
    status: str = "requested",
    filed_at: datetime | None = None,
    channel: str | None = None,
) -> int:
    """A report of an agency (`agency_reports`) requested of `unit`."""
    result = await s.execute(
        text(
            """
            INSERT INTO agency_reports (source, source_id, unit_code, unit_ref, requested_at,
                due_at, status, filed_at, channel, source_updated_at, raw, change_seq)
            VALUES ('t', :sid, :unit, :unit, :requested_at, :due_at, :status, :filed_at,
                :channel, now(), '{}', nextval('record_change_seq'))
            RETURNING id
            """
        ),
        {
            "sid": f"ar{_RUN}-{next(_ids)}",
            "unit": unit,
            "requested_at": requested_at,
            "due_at": due_at,
            "status": status,
            "filed_at": filed_at,
            "channel": channel,
        },
    )
    return int(result.scalar_one())


async def update_agency_report(s: AsyncSession, report_id: int, **fields: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in fields)
    await s.execute(
        text(
            f"UPDATE agency_reports SET {sets}, change_seq = nextval('record_change_seq') "
            "WHERE id = :id"
        ),
        {"id": report_id, **fields},
    )


async def add_procedure(
    s: AsyncSession, unit: str, code: str, online: bool, legal_days: float | None = None
) -> None:
    await s.execute(
        text(
            """
            INSERT INTO procedures (source, code, unit_code, online, legal_days, raw, change_seq)
            VALUES ('t', :code, :unit, :online, :legal_days, '{}', nextval('record_change_seq'))
            ON CONFLICT (source, code, unit_code) DO UPDATE SET online = EXCLUDED.online,
                legal_days = EXCLUDED.legal_days, change_seq = EXCLUDED.change_seq
            """
        ),
        {"code": code, "unit": unit, "online": online, "legal_days": legal_days},
    )


async def engine_round(db: Database, now: datetime, box: MemoryBox | None = None) -> Any:
    """A round as the engine service runs it: emit, commit, fold, commit. Without `box` the
    engine's memory is loaded afresh for the round."""
    if box is None:
        async with db.session() as s:
            return await run_round(s, now=now)
    async with db.session() as s:
        result = await emit_round(s, box, now=now)
    async with db.session() as s:
        await fold_journal(s)
    return result


async def kpi_events_since(db: Database, seq: int) -> list[Any]:
    async with db.session() as s:
        return [e for e in await read_since(s, seq, limit=100_000) if e.type == "kpi"]


async def last_event_seq(db: Database) -> int:
    async with db.session() as s:
        return await last_seq(s)


def by_id(kpis: list[Any]) -> dict[str, Any]:
    return {k.id: k for k in kpis}


def as_json(obj: Any) -> Any:
    return json.loads(obj.model_dump_json())
