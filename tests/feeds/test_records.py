"""Record events: source rows → masked dossier/report/document events → subscribers."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from ioc.db import Database
from tests.conftest import ServerMaker
from tests.feeds.conftest import FAST, token
from tests.feeds.receiver import Receiver

INSERT_DOSSIER = """
INSERT INTO dossiers (source, source_id, procedure_code, procedure_name, channel, unit_code,
    unit_ref, received_at, due_at, status, digitized, applicant_name, applicant_phone,
    applicant_email, applicant_address, source_updated_at, raw, change_seq)
VALUES ('portal', :id, '1.011442.000.00.00.H10', 'Đăng ký khai sinh', 2, :unit, :unit,
    '2026-11-27T08:30:00+07', '2026-11-30T17:00:00+07', 4, true, 'Nguyễn Thị Hồng Nhung',
    '0912345678', 'hongnhung@example.vn', '12 Lê Lợi', now(),
    '{"ChuHoSo": "Nguyễn Thị Hồng Nhung"}', nextval('record_change_seq'));
"""
INSERT_REPORT = """
INSERT INTO reports (source, source_id, received_at, channel, category, unit_code, unit_ref,
    status, title, content, citizen_name, citizen_phone, source_updated_at, raw, change_seq)
VALUES ('1022', 'PA-1', '2026-11-27T09:00:00+07', 'phone', 'environment', '25195', '25195',
    'received', 'Rác thải ven đường', 'Gọi tôi ở số 0987654321', 'Trần Văn Bình', '0987654321',
    now(), '{}', nextval('record_change_seq'));
"""
INSERT_DOCUMENT = """
WITH d AS (
    INSERT INTO documents (source, document_id, sender_organ, unit_code, code_number,
        code_notation, subject, sent_at, raw_xml, change_seq)
    VALUES ('lgsp', '000.00.00.H10,2026/11/27,267/UBND-KGVX', '000.00.00.H10', '70', '267',
        'UBND-KGVX', 'Về việc chuyển đổi số', '2026-11-27T10:00:00+07', '<edXML/>',
        nextval('record_change_seq'))
    RETURNING id
)
INSERT INTO document_recipients (document_pk, organ_id, unit_code)
SELECT id, '000.21.17.H10', '689' FROM d;
"""


async def test_records_become_masked_events_for_subscribers(
    feed_db: Database, feed_db_url: str, make_server: ServerMaker, receivers: Any
) -> None:
    server = await make_server(url=feed_db_url, **FAST)
    receiver: Receiver = await receivers()
    bearer = await token(feed_db, "district", "689")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        created = await http.post(
            "/api/v1/subscriptions",
            json={"url": receiver.url, "unit": "689", "topics": ["dossier", "report", "document"]},
            headers={"Authorization": f"Bearer {bearer}"},
        )
        assert created.status_code == 201
    async with feed_db.session() as session:
        await session.execute(text(INSERT_DOSSIER), {"id": "HS-689", "unit": "689"})
        await session.execute(text(INSERT_DOSSIER), {"id": "HS-688", "unit": "688"})
        await session.execute(text("SELECT pg_notify('ioc_ingest', 'dossiers')"))
    async with feed_db.session() as session:
        await session.execute(text(INSERT_REPORT))
        await session.execute(text(INSERT_DOCUMENT))
        await session.execute(text("SELECT pg_notify('ioc_ingest', 'reports')"))
    await receiver.wait_for(3)
    # one cursor per source table: order holds within a table, not across tables
    bodies = sorted((r.json for r in receiver.received), key=lambda b: b["seq"])
    bodies = sorted(bodies, key=lambda b: ["dossier", "report", "document"].index(b["type"]))
    assert [(b["type"], b["unit"]) for b in bodies] == [
        ("dossier", "689"),
        ("report", "25195"),
        ("document", "70"),
    ]
    dossier = bodies[0]["data"]
    assert dossier["id"] == "HS-689"
    assert dossier["applicant_name"] == "N*** T*** H*** N***"
    assert dossier["applicant_phone"] == "******5678"
    assert "applicant_email" not in dossier and "raw" not in dossier
    assert (dossier["channel"], dossier["status"], dossier["digitized"]) == (2, 4, True)
    assert dossier["received_at"] == "2026-11-27T01:30:00+00:00"
    report = bodies[1]["data"]
    assert (report["id"], report["citizen_name"], report["citizen_phone"]) == (
        "PA-1",
        "T*** V*** B***",
        "******4321",
    )
    assert "content" not in report
    document = bodies[2]["data"]
    assert document["units"] == ["70", "689"]
    assert document["recipients"] == [
        {"organ_id": "000.21.17.H10", "unit": "689", "status": None, "completed_at": None}
    ]
    for text_body in (r.body.decode() for r in receiver.received):
        assert "Nhung" not in text_body and "0912345678" not in text_body
        assert "0987654321" not in text_body
    # exactly one event per change: the 688 dossier is in the log but not sent to 689
    async with feed_db.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT type, subject FROM events "
                    "WHERE type IN ('dossier', 'report', 'document')"
                )
            )
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        ("document", "000.00.00.H10,2026/11/27,267/UBND-KGVX"),
        ("dossier", "HS-688"),
        ("dossier", "HS-689"),
        ("report", "PA-1"),
    ]
