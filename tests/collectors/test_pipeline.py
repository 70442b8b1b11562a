"""The ingest pipeline against the real database: exactly-once, no regression, history,
dead-letters and replay."""

from __future__ import annotations

import json
from pathlib import Path

from ioc.collectors import ingest_json, ingest_xml, list_dead_letters, replay_dead_letters
from ioc.db import Database

from .factories import dossier, fetch, new_source, report, value

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def test_same_batch_twice_changes_nothing(db: Database) -> None:
    source = new_source()
    batch = [dossier(f"D-{i}", KenhThucHien=1 + i % 3) for i in range(50)]
    async with db.session() as s:
        first = await ingest_json(s, "dossiers", source, batch)
    assert (first.accepted, first.inserted, first.updated, first.unchanged) == (50, 50, 0, 0)
    before = await fetch(
        db, "SELECT source_id, change_seq FROM dossiers WHERE source = $1 ORDER BY 1", source
    )
    async with db.session() as s:
        again = await ingest_json(s, "dossiers", source, list(reversed(batch)))
    assert (again.accepted, again.inserted, again.updated, again.unchanged) == (50, 0, 0, 50)
    after = await fetch(
        db, "SELECT source_id, change_seq FROM dossiers WHERE source = $1 ORDER BY 1", source
    )
    assert before == after
    assert (
        await value(
            db,
            "SELECT count(*) FROM dossier_history h JOIN dossiers d ON d.id = h.dossier_id "
            "WHERE d.source = $1",
            source,
        )
        == 50
    )


async def test_older_version_never_regresses(db: Database) -> None:
    source = new_source()
    received = dossier("D-1")
    processing = dossier("D-1", TrangThaiHoSo=4)
    finished = dossier("D-1", TrangThaiHoSo=9, NgayKetThucXuLy="20260317153000")
    async with db.session() as s:
        await ingest_json(s, "dossiers", source, [received])
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, [finished])
    assert r.updated == 1
    seq = await value(db, "SELECT change_seq FROM dossiers WHERE source = $1", source)
    for older in (processing, received):  # arriving late
        async with db.session() as s:
            r = await ingest_json(s, "dossiers", source, [older])
        assert (r.accepted, r.updated, r.unchanged) == (1, 0, 1)
    row = (await fetch(
        db, "SELECT status, finished_at IS NOT NULL AS fin, change_seq FROM dossiers "
        "WHERE source = $1", source))[0]  # fmt: skip
    assert (row["status"], row["fin"], row["change_seq"]) == (9, True, seq)
    # both versions in one batch, newest first: the newest still wins
    source2 = new_source()
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source2, [finished, processing, received])
    assert (r.accepted, r.inserted) == (3, 1)
    assert await value(db, "SELECT status FROM dossiers WHERE source = $1", source2) == 9
    history = await fetch(
        db,
        "SELECT h.status FROM dossier_history h JOIN dossiers d ON d.id = h.dossier_id "
        "WHERE d.source = $1 ORDER BY h.at",
        source,
    )
    assert [h["status"] for h in history] == [2, 9]


async def test_history_only_for_status_changes_inserted_and_updated_counted(
    db: Database,
) -> None:
    """The upsert tells inserts from updates (`xmax = 0`) and reads the status a row had
    before the statement from the statement's snapshot: a change of another field updates
    the row without a history row; a status change adds one."""
    source = new_source()
    history = (
        "SELECT h.status FROM dossier_history h JOIN dossiers d ON d.id = h.dossier_id "
        "WHERE d.source = $1 AND d.source_id = $2 ORDER BY h.at, h.status"
    )
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, [dossier("D-1"), dossier("D-2")])
    assert (r.inserted, r.updated, r.unchanged) == (2, 0, 0)
    async with db.session() as s:  # D-1: another field only; D-3: new
        r = await ingest_json(
            s, "dossiers", source, [dossier("D-1", DaSoHoa=False), dossier("D-2"), dossier("D-3")]
        )
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 1)
    assert [h["status"] for h in await fetch(db, history, source, "D-1")] == [2]
    async with db.session() as s:  # D-1 moves on; D-2 unchanged
        r = await ingest_json(
            s, "dossiers", source,
            [dossier("D-1", DaSoHoa=False, TrangThaiHoSo=4), dossier("D-2")],
        )  # fmt: skip
    assert (r.inserted, r.updated, r.unchanged) == (0, 1, 1)
    assert [h["status"] for h in await fetch(db, history, source, "D-1")] == [2, 4]
    assert [h["status"] for h in await fetch(db, history, source, "D-2")] == [2]


async def test_reports_out_of_order_and_history(db: Database) -> None:
    source = new_source()
    v1 = report("R-1")
    v2 = report("R-1", status="in_progress", first_response_at="2026-03-15T10:00:00+07:00")
    v3 = report(
        "R-1", status="resolved", first_response_at="2026-03-15T10:00:00+07:00",
        resolved_at="2026-03-17T09:00:00+07:00",
    )  # fmt: skip
    for version in (v1, v3, v2, v1):
        async with db.session() as s:
            await ingest_json(s, "reports", source, [version])
    rows = await fetch(
        db, "SELECT status, resolved_at IS NOT NULL AS res FROM reports WHERE source = $1", source
    )
    assert [(r["status"], r["res"]) for r in rows] == [("resolved", True)]
    hist = await fetch(
        db,
        "SELECT h.status FROM report_history h JOIN reports r ON r.id = h.report_id "
        "WHERE r.source = $1 ORDER BY h.at",
        source,
    )
    assert [h["status"] for h in hist] == ["received", "resolved"]


async def test_samples_end_to_end_with_progress(db: Database) -> None:
    source = new_source()
    sync = json.loads((SAMPLES / "dvcqg-dongbohoso.json").read_text())
    progress = json.loads((SAMPLES / "dvcqg-capnhattiendo.json").read_text())
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, sync)
    assert (r.accepted, r.inserted, len(r.rejected)) == (2, 2, 0)
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, progress)
    assert (r.accepted, r.updated, len(r.rejected)) == (2, 2, 0)
    row = (await fetch(
        db, "SELECT status, finished_at, unit_code FROM dossiers WHERE source = $1 "
        "AND source_id = '000.22.17.H10-260316-0007'", source))[0]  # fmt: skip
    assert row["status"] == 9 and row["unit_code"] == "25195"
    assert row["finished_at"].isoformat() == "2026-03-16T08:40:00+00:00"
    hist = await fetch(
        db,
        "SELECT h.status, h.origin, h.actor FROM dossier_history h JOIN dossiers d "
        "ON d.id = h.dossier_id WHERE d.source = $1 AND d.source_id = "
        "'000.22.17.H10-260316-0007' ORDER BY h.at",
        source,
    )
    assert [(h["status"], h["origin"]) for h in hist] == [
        (4, "sync"), (4, "progress"), (9, "progress"),
    ]  # fmt: skip
    # the same steps again add nothing
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, progress)
    assert (r.accepted, r.updated, r.unchanged) == (2, 0, 2)
    # the sync sent again (older than the steps) does not move the status back to 4
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source, sync)
    assert r.unchanged == 2
    assert await value(
        db, "SELECT status FROM dossiers WHERE source = $1 AND source_id = $2",
        source, "000.22.17.H10-260316-0007",
    ) == 9  # fmt: skip


async def test_rejects_are_dead_lettered_once_and_replayable(db: Database) -> None:
    source = new_source()
    batch = [
        dossier("OK-1"),
        dossier("BAD-UNIT", MaDonVi="99999"),
        dossier("BAD-DATE", NgayTiepNhan="15/03/2026"),
        dossier("ORGAN", MaDonVi="000.23.17.H10"),  # organ id → 688
    ]
    for _ in range(2):
        async with db.session() as s:
            r = await ingest_json(s, "dossiers", source, batch)
        assert r.accepted == 2
        assert [(x.index, x.record_id) for x in r.rejected] == [(1, "BAD-UNIT"), (2, "BAD-DATE")]
    assert r.rejected[0].errors == [
        "MaDonVi: unknown unit '99999' (neither a loaded GSO unit code nor a mapped organ id; "
        "load it with `ioc units load` / `ioc organs load`, then replay)"
    ]
    assert await value(db, "SELECT unit_code FROM dossiers WHERE source_id = 'ORGAN' "
                       "AND source = $1", source) == "688"  # fmt: skip
    async with db.session() as s:
        letters = await list_dead_letters(s, source=source)
    assert [(d.record_id, d.times_seen, d.format) for d in letters] == [
        ("BAD-UNIT", 2, "dossier"), ("BAD-DATE", 2, "dossier"),
    ]  # fmt: skip
    assert json.loads(letters[0].payload)["ChuHoSo"] == "Nguyễn Thị Hồng Nhung"
    # the fix: the organ directory learns 99999 is Đồng Xoài's new code… here, map it
    conn = await db.connect_raw()
    try:
        await conn.execute(
            "INSERT INTO organs (organ_id, unit_code, name) VALUES ('99999', '689', 'test') "
            "ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()
    async with db.session() as s:
        outcomes = await replay_dead_letters(s, [d.id for d in letters])
    assert [(o.accepted, o.errors) for o in outcomes] == [
        (True, []),
        (False, ["NgayTiepNhan: '15/03/2026' is not a yyyyMMddHHmmss time"]),
    ]
    async with db.session() as s:
        pending = await list_dead_letters(s, source=source)
    assert [(d.record_id, d.replay_outcome) for d in pending] == [("BAD-DATE", "rejected again")]
    assert await value(db, "SELECT count(*) FROM dossiers WHERE source = $1", source) == 3


async def test_documents_and_status(db: Database) -> None:
    source = new_source()
    doc = (SAMPLES / "edxml-document.edxml").read_bytes()
    status = (SAMPLES / "edxml-status.xml").read_bytes()
    async with db.session() as s:
        r = await ingest_xml(s, source, [status])  # status before its document
    assert r.accepted == 0 and "no document" in r.rejected[0].errors[0]
    async with db.session() as s:
        r = await ingest_xml(s, source, [doc, doc])
    assert (r.accepted, r.inserted, r.unchanged) == (2, 1, 1)
    async with db.session() as s:
        letters = await list_dead_letters(s, source=source)
        outcomes = await replay_dead_letters(s, [d.id for d in letters])
    assert [o.accepted for o in outcomes] == [True]
    rows = await fetch(
        db,
        "SELECT r.organ_id, r.unit_code, r.status FROM document_recipients r "
        "JOIN documents d ON d.id = r.document_pk WHERE d.source = $1 ORDER BY 1",
        source,
    )
    assert [tuple(r) for r in rows] == [
        ("000.21.17.H10", "689", "04"), ("000.23.17.H10", "688", None),
    ]  # fmt: skip
    d = (await fetch(db, "SELECT unit_code, status, completed_at, electronic, attachments "
                     "FROM documents WHERE source = $1", source))[0]  # fmt: skip
    assert (d["unit_code"], d["status"], d["completed_at"], d["electronic"]) == (
        "70", "04", None, True,
    )  # fmt: skip
    unmapped = (
        doc.replace(b"000.00.00.H10", b"000.99.99.H99")
        .replace(b"000.21.17.H10", b"000.98.98.H98")
        .replace(b"000.23.17.H10", b"000.97.97.H97")
    )
    async with db.session() as s:
        r = await ingest_xml(s, source, [unmapped])
    assert r.rejected[0].errors == [
        "no organ of this document is mapped to a unit: 000.99.99.H99, 000.98.98.H98, "
        "000.97.97.H97 (load the mapping with `ioc organs load`, then replay)"
    ]


async def test_progress_step_for_unknown_dossier_is_dead_lettered(db: Database) -> None:
    source = new_source()
    step = {"MaHoSo": "NOPE-1", "TrangThai": 4, "ThoiDiemXuLy": "20260316093000"}
    async with db.session() as s:
        r = await ingest_json(s, "dossiers", source,
                              {"service": "CapNhatTienDoHoSoMC", "data": [step]})  # fmt: skip
    assert r.accepted == 0
    assert r.rejected[0].errors == [
        f"MaHoSo: no dossier 'NOPE-1' from source {source!r} in this collector's scope "
        "(send the dossier first, then replay this step)"
    ]
    async with db.session() as s:
        letters = await list_dead_letters(s, source=source)
    assert [(d.format, d.feed) for d in letters] == [("dossier_progress", "dossiers")]


async def test_document_versions_and_late_status_messages(db: Database) -> None:
    source = new_source()
    doc = (SAMPLES / "edxml-document.edxml").read_text()
    status = (SAMPLES / "edxml-status.xml").read_text()
    updated = (
        doc.replace("2026/03/12 15:42:10", "2026/03/14 09:00:00")
        .replace("<edXML:BussinessDocType>0<", "<edXML:BussinessDocType>2<")
        .replace("2026/03/31</edXML:DueDate>", "2026/04/15</edXML:DueDate>")
    )
    completed = status.replace(">04<", ">06<").replace("2026/03/13 08:20:05", "2026/03/20 10:00:00")
    async with db.session() as s:
        r = await ingest_xml(s, source, [doc, updated, doc, completed, status])
    assert (r.accepted, r.inserted, r.updated, r.unchanged) == (5, 1, 3, 1)
    row = (await fetch(db, "SELECT due_on::text, business_type, status, completed_at "
                       "FROM documents WHERE source = $1", source))[0]  # fmt: skip
    # the update (later trace time) won; the old copy sent after it changed nothing; the
    # late "assigned" message is kept in history but does not undo "completed"
    assert (row["due_on"], row["business_type"], row["status"]) == ("2026-04-15", 2, "06")
    assert row["completed_at"] is None  # the second recipient has not completed
    hist = await fetch(
        db, "SELECT status_code FROM document_status_history h JOIN documents d "
        "ON d.id = h.document_pk WHERE d.source = $1 ORDER BY at", source,
    )  # fmt: skip
    assert [h["status_code"] for h in hist] == ["04", "06"]
