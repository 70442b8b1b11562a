"""Storing edXML documents and applying their status messages.

Documents are few (hundreds a day per province), so each is one small set of statements in
the batch's transaction rather than a COPY. Version order: a document re-sent with a
later trace timestamp (update/replace, `BussinessDocType` 2/3) overwrites; an older or equal
copy changes nothing. A recipient's status moves only forward in time (`Timestamp` of the
status message); every status message is kept in `document_status_history`.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.collectors.edxml import COMPLETED
from ioc.collectors.records import DocumentRecord, IngestResult, StatusRecord
from ioc.collectors.store import LOCK_SQL, raw_connection, resolve_units, scope_units
from ioc.events import INGEST_CHANNEL

_UPSERT_DOCUMENT = """
INSERT INTO documents AS d (
    source, document_id, sender_organ, unit_code, code_number, code_notation, promulgated_on,
    document_type, document_type_name, subject, signer_name, due_on, priority, steering_type,
    electronic, business_type, attachments, sent_at, raw_xml, change_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18,
        $19, nextval('record_change_seq'))
ON CONFLICT (source, document_id) DO UPDATE SET
    sender_organ = EXCLUDED.sender_organ, unit_code = EXCLUDED.unit_code,
    code_number = EXCLUDED.code_number, code_notation = EXCLUDED.code_notation,
    promulgated_on = EXCLUDED.promulgated_on, document_type = EXCLUDED.document_type,
    document_type_name = EXCLUDED.document_type_name, subject = EXCLUDED.subject,
    signer_name = EXCLUDED.signer_name, due_on = EXCLUDED.due_on,
    priority = EXCLUDED.priority, steering_type = EXCLUDED.steering_type,
    electronic = EXCLUDED.electronic, business_type = EXCLUDED.business_type,
    attachments = EXCLUDED.attachments, sent_at = EXCLUDED.sent_at, raw_xml = EXCLUDED.raw_xml,
    change_seq = nextval('record_change_seq'), updated_at = now()
WHERE EXCLUDED.sent_at > d.sent_at
   OR (EXCLUDED.sent_at = d.sent_at AND (
        d.subject, d.due_on, d.unit_code, d.priority, d.electronic, d.business_type,
        d.attachments, d.signer_name, d.document_type)
       IS DISTINCT FROM (
        EXCLUDED.subject, EXCLUDED.due_on, EXCLUDED.unit_code, EXCLUDED.priority,
        EXCLUDED.electronic, EXCLUDED.business_type, EXCLUDED.attachments,
        EXCLUDED.signer_name, EXCLUDED.document_type))
RETURNING id, (xmax = 0) AS inserted
"""


async def store_document(
    session: AsyncSession, source: str, doc: DocumentRecord, scope: str | None = None
) -> tuple[str, list[str]]:
    """Upsert one document → (`inserted`|`updated`|`unchanged`|`rejected`, reasons)."""
    conn = await raw_connection(session)
    organs = [doc.sender_organ, *doc.recipients]
    units = await resolve_units(conn, organs)
    if not any(o in units for o in organs):
        return "rejected", [
            "no organ of this document is mapped to a unit: "
            + ", ".join(dict.fromkeys(organs))
            + " (load the mapping with `ioc organs load`, then replay)"
        ]
    allowed = await scope_units(conn, scope)
    if allowed is not None and not allowed.intersection(units.values()):
        unmapped = [o for o in dict.fromkeys(organs) if o not in units]
        reason = "neither sender nor recipients are within this collector's unit " + str(scope)
        if unmapped:  # the likelier cause: an organ of the collector's unit not yet mapped
            reason += (
                f"; organ id(s) {', '.join(unmapped)} are not mapped to any unit: add them to "
                "the organs file (organ_id,unit_code,name) and `ioc organs load FILE.csv`, "
                "then replay"
            )
        return "rejected", [reason]
    await conn.execute(LOCK_SQL)
    row = await conn.fetchrow(
        _UPSERT_DOCUMENT,
        source, doc.document_id, doc.sender_organ, units.get(doc.sender_organ),
        doc.code_number, doc.code_notation, doc.promulgated_on, doc.document_type,
        doc.document_type_name, doc.subject, doc.signer_name, doc.due_on, doc.priority,
        doc.steering_type, doc.electronic, doc.business_type,
        json.dumps([asdict(a) for a in doc.attachments], ensure_ascii=False),
        doc.sent_at, doc.raw_xml,
    )  # fmt: skip
    if row is None:
        document_pk = await conn.fetchval(
            "SELECT id FROM documents WHERE source = $1 AND document_id = $2",
            source,
            doc.document_id,
        )
        outcome = "unchanged"
    else:
        document_pk, outcome = row["id"], ("inserted" if row["inserted"] else "updated")
    added = await conn.fetch(
        """
        INSERT INTO document_recipients (document_pk, organ_id, unit_code)
        SELECT $1, organ_id, unit_code FROM unnest($2::text[], $3::text[]) AS r(organ_id, unit_code)
        ON CONFLICT DO NOTHING
        RETURNING organ_id
        """,
        document_pk,
        doc.recipients,
        [units.get(o) for o in doc.recipients],
    )
    if added and outcome == "unchanged":
        await _bump(conn, document_pk)
        outcome = "updated"
    if outcome != "unchanged":
        await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, "documents")
    return outcome, []


async def _bump(conn: asyncpg.Connection, document_pk: int) -> None:
    await conn.execute(
        "UPDATE documents SET change_seq = nextval('record_change_seq'), updated_at = now() "
        "WHERE id = $1",
        document_pk,
    )


_APPLY_STATUS = """
WITH rcpt AS (
    INSERT INTO document_recipients AS r (document_pk, organ_id, unit_code, status, status_at,
                                          completed_at)
    VALUES ($1, $2, $3, $4::text, $5::timestamptz,
            CASE WHEN $4::text = $6::text THEN $5::timestamptz END)
    ON CONFLICT (document_pk, organ_id) DO UPDATE SET
        status = CASE WHEN r.status_at IS NULL OR EXCLUDED.status_at > r.status_at
                      THEN EXCLUDED.status ELSE r.status END,
        status_at = greatest(r.status_at, EXCLUDED.status_at),
        completed_at = coalesce(r.completed_at, EXCLUDED.completed_at)
    RETURNING 1
)
SELECT count(*) FROM rcpt
"""
# The document's own state summarises its recipients: the latest status, and completed
# when every recipient has completed.
_SUMMARISE = """
WITH s AS (
    SELECT (array_agg(status ORDER BY status_at DESC NULLS LAST))[1] AS status,
           max(status_at) AS status_at,
           CASE WHEN bool_and(completed_at IS NOT NULL) THEN max(completed_at) END
               AS completed_at
    FROM document_recipients WHERE document_pk = $1
)
UPDATE documents d SET status = s.status, status_at = s.status_at,
    completed_at = s.completed_at, change_seq = nextval('record_change_seq'), updated_at = now()
FROM s
WHERE d.id = $1 AND (d.status, d.status_at, d.completed_at)
    IS DISTINCT FROM (s.status, s.status_at, s.completed_at)
RETURNING 1
"""


async def apply_status(
    session: AsyncSession, source: str, status: StatusRecord, scope: str | None = None
) -> tuple[str, list[str]]:
    """Record one status message → (`updated`|`unchanged`|`rejected`, reasons)."""
    conn = await raw_connection(session)
    allowed = await scope_units(conn, scope)
    if allowed is not None:
        unit = (await resolve_units(conn, [status.organ_id])).get(status.organ_id)
        if unit is None:
            return "rejected", [
                f"From/OrganId: organ id {status.organ_id} is not mapped to any unit: add it "
                "to the organs file (organ_id,unit_code,name) and `ioc organs load FILE.csv`, "
                "then replay"
            ]
        if unit not in allowed:
            return "rejected", [
                f"From/OrganId: {status.organ_id} is unit {unit}, not within this collector's "
                f"unit {scope}"
            ]
    document_pk = await conn.fetchval(
        "SELECT id FROM documents WHERE document_id = $1 ORDER BY (source = $2) DESC, id LIMIT 1",
        status.document_id,
        source,
    )
    if document_pk is None:
        return "rejected", [
            f"ResponseFor/DocumentId: no document {status.document_id!r} has been received "
            "(send the document first, then replay this status)"
        ]
    await conn.execute(LOCK_SQL)
    new = await conn.fetchval(
        """
        INSERT INTO document_status_history (document_pk, organ_id, status_code, at,
            description, department, staff, raw_xml)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1
        """,
        document_pk, status.organ_id, status.status_code, status.at, status.description,
        status.department, status.staff, status.raw_xml,
    )  # fmt: skip
    if new is None:
        return "unchanged", []
    units = await resolve_units(conn, [status.organ_id])
    await conn.fetchval(
        _APPLY_STATUS,
        document_pk, status.organ_id, units.get(status.organ_id), status.status_code,
        status.at, COMPLETED,
    )  # fmt: skip
    if await conn.fetchval(_SUMMARISE, document_pk) is None:
        await _bump(conn, document_pk)  # history grew: downstream may show the new step
    await conn.execute("SELECT pg_notify($1, $2)", INGEST_CHANNEL, "documents")
    return "updated", []


def empty_result() -> IngestResult:
    return IngestResult("documents")
