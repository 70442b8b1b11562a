"""The record-events projector: source records (dossiers, reports, documents) → event log.

A leased loop tails `change_seq > cursor` per source table (seam 1 of
docs/architecture.md), woken by `NOTIFY ioc_ingest`. For each changed record it publishes
one small event (type `dossier` | `report` | `document`, `unit_code` = the record's unit,
`subject` = the record's id) with personal data masked, and moves the table's cursor in the
same transaction — so every change is published exactly once, in change order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.db import Database
from ioc.events import INGEST_CHANNEL, Listener, NewEvent, publish
from ioc.loops import LoopService
from ioc.privacy import mask_record

log = logging.getLogger("ioc.feeds")

BATCH = 500  # records per transaction: keeps the event writers' lock short

_DOSSIERS = """
    SELECT d.change_seq, d.unit_code, d.source_id AS id, d.source, d.procedure_code,
        d.procedure_name, d.sector_code, d.sector_name, d.channel, d.received_at, d.due_at,
        d.finished_at, d.returned_at, d.status, d.service_level, d.digitized, d.paid_online,
        d.applicant_name, d.applicant_phone
    FROM dossiers d WHERE d.change_seq > :c ORDER BY d.change_seq LIMIT :n
"""
# The free-text `content` is left out: citizens write names and phone numbers in it, and
# masking free text reliably is not possible. The title is short and kept.
_REPORTS = """
    SELECT r.change_seq, r.unit_code, r.source_id AS id, r.source, r.received_at, r.channel,
        r.category, r.status, r.assigned_to, r.due_at, r.first_response_at, r.resolved_at,
        r.title, r.citizen_name, r.citizen_phone, r.lat, r.lon
    FROM reports r WHERE r.change_seq > :c ORDER BY r.change_seq LIMIT :n
"""
_DOCUMENTS = """
    SELECT d.change_seq, d.unit_code, d.document_id AS id, d.source, d.sender_organ,
        d.code_number, d.code_notation, d.promulgated_on, d.document_type,
        d.document_type_name, d.subject, d.due_on, d.priority, d.steering_type, d.electronic,
        d.status, d.status_at, d.completed_at, d.sent_at,
        coalesce((SELECT jsonb_agg(jsonb_build_object('organ_id', r.organ_id,
                'unit', r.unit_code, 'status', r.status, 'completed_at', r.completed_at)
                ORDER BY r.organ_id)
            FROM document_recipients r WHERE r.document_pk = d.id), '[]') AS recipients
    FROM documents d WHERE d.change_seq > :c ORDER BY d.change_seq LIMIT :n
"""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _record(row: Any) -> dict[str, Any]:
    record = {k: _plain(v) for k, v in row._mapping.items() if k not in ("change_seq",)}
    record["unit"] = record.pop("unit_code")
    return mask_record(record)


def _document(row: Any) -> dict[str, Any]:
    record = _record(row)
    recipients = record.get("recipients") or []
    # Every unit the document concerns: subscriptions of a receiving unit get it too.
    units = [record["unit"]] if record["unit"] else []
    units += [r["unit"] for r in recipients if r.get("unit") and r["unit"] not in units]
    record["units"] = units
    record["unit"] = units[0] if units else None
    return record


_TABLES: dict[str, tuple[str, str, Callable[[Any], dict[str, Any]]]] = {
    "dossiers": ("dossier", _DOSSIERS, _record),
    "reports": ("report", _REPORTS, _record),
    "documents": ("document", _DOCUMENTS, _document),
}


async def project_table(session: AsyncSession, table: str, *, limit: int = BATCH) -> int:
    """Publish events for up to `limit` changed records of `table`; return how many."""
    event_type, sql, shape = _TABLES[table]
    cursor = (
        await session.execute(
            text("SELECT change_seq FROM feed_record_cursors WHERE source_table = :t FOR UPDATE"),
            {"t": table},
        )
    ).scalar_one()
    rows = (await session.execute(text(sql), {"c": cursor, "n": limit})).all()
    if not rows:
        return 0
    events = []
    for row in rows:
        record = shape(row)
        if record["unit"] is None:
            continue  # nothing to scope it to; such a document was dead-lettered anyway
        events.append(
            NewEvent(
                type=event_type, payload=record, unit_code=record["unit"], subject=record["id"]
            )
        )
    await publish(session, events)
    await session.execute(
        text(
            "UPDATE feed_record_cursors SET change_seq = :c, updated_at = now() "
            "WHERE source_table = :t"
        ),
        {"c": rows[-1].change_seq, "t": table},
    )
    metrics.FEEDS_RECORD_EVENTS.labels(event_type).inc(len(events))
    return len(rows)


class RecordEventsService(LoopService):
    """Leased: publishes record events for every change of dossiers, reports, documents."""

    name = "feeds.records"
    leased = True

    def __init__(
        self, db: Database, dsn: str, *, loop_seconds: float, listener: Listener | None = None
    ) -> None:
        super().__init__(dsn=dsn, loop_seconds=loop_seconds)
        self.db = db
        if listener is not None:
            listener.subscribe(INGEST_CHANNEL, lambda _payload: self.wake())

    async def run_once(self) -> None:
        for table in _TABLES:
            while True:
                async with self.db.session() as session:
                    count = await project_table(session, table)
                if count < BATCH:
                    break
