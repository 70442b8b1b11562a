"""Ingest entry points: push, pull and dead-letter replay all come through here.

Every function takes the caller's session and never commits: a push request, a pulled page
with its cursor, or a replay is one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.collectors import deadletters, store
from ioc.collectors import documents as docstore
from ioc.collectors.agency_reports import AGENCY_REPORT, AGENCY_REPORTS, parse_agency_report
from ioc.collectors.deadletters import DeadLetter
from ioc.collectors.dossiers import (
    DOSSIER,
    PROGRESS,
    envelope_unit,
    parse_dossier,
    parse_step,
    unwrap,
)
from ioc.collectors.edxml import (
    EDXML,
    BadXml,
    TooLarge,
    XmlRecordError,
    kind_of,
    parse_document,
    parse_status,
    parse_xml,
)
from ioc.collectors.procedures import PROCEDURE, parse_procedure
from ioc.collectors.records import (
    AgencyReportRecord,
    DossierRecord,
    IngestResult,
    ProcedureRecord,
    ProgressStep,
    Rejection,
    ReportRecord,
)
from ioc.collectors.reports import (
    DANANG,
    HUE_S,
    REPORT,
    is_danang,
    is_hue_s,
    parse_report,
    unit_places,
)
from ioc.errors import Invalid

FEEDS = ("dossiers", "procedures", "reports", "documents", "agency_reports")
# Replay order: what others refer to first (a step needs its dossier).
REPLAY_ORDER = (PROCEDURE, DOSSIER, PROGRESS, REPORT, DANANG, HUE_S, EDXML, AGENCY_REPORT)


class BadBody(Invalid):
    """The body is not the feed's format at all (→ 400)."""

    status = 400
    title = "Not the expected format"
    type_slug = "bad-body"


@dataclass(frozen=True, slots=True)
class XmlLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_depth: int = 64


# --- JSON feeds -------------------------------------------------------------------------


def split_body(feed: str, body: Any) -> tuple[str, list[Any]]:
    """(format, items) of a pushed or pulled JSON body for `feed`; `BadBody` if it is not."""
    if feed == "dossiers":
        try:
            return unwrap(body)
        except ValueError as exc:
            raise BadBody(str(exc)) from None
    if feed == "reports" and isinstance(body, dict) and isinstance(body.get("data"), list):
        return REPORT, body["data"]  # a page of a province's API as it answers (Hue-S)
    if not isinstance(body, list):
        raise BadBody(f"expected a JSON array of {feed}")
    if feed == "agency_reports":
        return AGENCY_REPORT, body
    return (PROCEDURE if feed == "procedures" else REPORT), body


async def ingest_items(
    session: AsyncSession,
    fmt: str,
    source: str,
    items: Sequence[Any],
    *,
    dead_letters: bool = True,
    scope: str | None = None,
    envelope: str | Sequence[str | None] | None = None,
) -> IngestResult:
    """Parse and store JSON records of one format; rejects go to dead-letters (by default).
    `scope` (a collector token's unit) rejects records for units outside it. `envelope` is
    the sync envelope's `madonvi` for dossiers (one for all, or one per item on replay)."""
    rejected: list[Rejection] = []
    if fmt == DOSSIER:
        dossiers: list[DossierRecord] = []
        for i, obj in enumerate(items):
            unit = envelope if envelope is None or isinstance(envelope, str) else envelope[i]
            p = parse_dossier(i, obj, unit)
            (rejected if isinstance(p, Rejection) else dossiers).append(p)  # type: ignore[arg-type]
        result = await store.upsert(session, store.DOSSIERS, source, dossiers, rejected, scope)
    elif fmt == PROGRESS:
        steps: list[ProgressStep] = []
        for i, obj in enumerate(items):
            (rejected if isinstance(p2 := parse_step(i, obj), Rejection) else steps).append(p2)  # type: ignore[arg-type]
        result = await store.store_steps(session, source, steps, rejected, scope)
    elif fmt == PROCEDURE:
        procs: list[ProcedureRecord] = []
        for i, obj in enumerate(items):
            (rejected if isinstance(p3 := parse_procedure(i, obj), Rejection) else procs).append(p3)  # type: ignore[arg-type]
        result = await store.upsert(session, store.PROCEDURES, source, procs, rejected, scope)
    elif fmt in (REPORT, DANANG, HUE_S):
        places = (
            await _places(session)
            if any(isinstance(o, dict) and (is_danang(o) or is_hue_s(o)) for o in items)
            else None
        )
        reports: list[ReportRecord] = []
        for i, obj in enumerate(items):
            organ = envelope if envelope is None or isinstance(envelope, str) else envelope[i]
            p4 = parse_report(i, obj, places, organ)
            (rejected if isinstance(p4, Rejection) else reports).append(p4)  # type: ignore[arg-type]
        result = await store.upsert(session, store.REPORTS, source, reports, rejected, scope)
    elif fmt == AGENCY_REPORT:
        agency: list[AgencyReportRecord] = []
        for i, obj in enumerate(items):
            p5 = parse_agency_report(i, obj)
            (rejected if isinstance(p5, Rejection) else agency).append(p5)  # type: ignore[arg-type]
        result = await store.upsert(session, AGENCY_REPORTS, source, agency, rejected, scope)
    else:
        raise Invalid(f"unknown record format {fmt!r}")
    rejected.sort(key=lambda r: r.index)
    result.rejected = rejected
    if dead_letters and rejected:
        await deadletters.store_dead_letters(session, source, rejected)
    return result


async def ingest_json(
    session: AsyncSession,
    feed: str,
    source: str,
    body: Any,
    *,
    max_records: int = 10_000,
    scope: str | None = None,
    madonvi: str | None = None,
) -> IngestResult:
    """A whole pushed/pulled JSON body of `feed`. `madonvi` names the sending system's organ
    when the body does not (a plain array pushed to `…/ingest/dossiers?madonvi=`)."""
    fmt, items = split_body(feed, body)
    if len(items) > max_records:
        raise TooLarge(f"{len(items)} records in one batch; at most {max_records} are accepted")
    return await ingest_items(
        session, fmt, source, items, scope=scope, envelope=envelope_unit(body) or madonvi
    )


async def _places(session: AsyncSession) -> dict[str, str]:
    conn = await store.raw_connection(session)
    rows = await conn.fetch(
        "SELECT code, name FROM units WHERE level IN ('commune', 'district') ORDER BY code"
    )
    return unit_places((r["code"], r["name"]) for r in rows)


# --- edXML ------------------------------------------------------------------------------


async def ingest_xml(
    session: AsyncSession,
    source: str,
    bodies: Sequence[bytes | str],
    *,
    limits: XmlLimits = XmlLimits(),
    dead_letters: bool = True,
    strict: bool = True,
    scope: str | None = None,
) -> IngestResult:
    """edXML envelopes and status messages, in order. With `strict`, an unparseable body
    raises `BadXml` (a push answers 400); otherwise it becomes a rejection (a pulled page)."""
    result = IngestResult("documents")
    for index, body in enumerate(bodies):
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            root = parse_xml(data, max_bytes=limits.max_bytes, max_depth=limits.max_depth)
            kind = kind_of(root)
        except BadXml as exc:
            if strict:
                raise
            result.rejected.append(Rejection(index, None, [exc.detail], _text(data), EDXML))
            continue
        text = _text(data)
        parsed = parse_document(root, text) if kind == "document" else parse_status(root, text)
        if isinstance(parsed, XmlRecordError):
            result.rejected.append(Rejection(index, parsed.record_id, parsed.errors, text, EDXML))
            continue
        if kind == "document":
            outcome, reasons = await docstore.store_document(session, source, parsed, scope)  # type: ignore[arg-type]
        else:
            outcome, reasons = await docstore.apply_status(session, source, parsed, scope)  # type: ignore[arg-type]
        if outcome == "rejected":
            result.rejected.append(Rejection(index, parsed.document_id, reasons, text, EDXML))
            continue
        result.accepted += 1
        setattr(result, outcome, getattr(result, outcome) + 1)
    if dead_letters and result.rejected:
        await deadletters.store_dead_letters(session, source, result.rejected)
    return result


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    id: int
    accepted: bool
    errors: list[str]


async def replay_dead_letters(
    session: AsyncSession,
    ids: Sequence[int] | None = None,
    *,
    limits: XmlLimits = XmlLimits(),
    limit: int = 10_000,
) -> list[ReplayOutcome]:
    """Re-run pending dead-letters (these ids, or all) through the pipeline after a fix.

    Accepted ones are marked replayed; ones still rejected stay pending with the new reasons.
    Runs in the caller's transaction; rows are locked so two replays never double-apply."""
    letters = await deadletters.pending_for_replay(session, ids, limit)
    outcomes: list[ReplayOutcome] = []
    for fmt in REPLAY_ORDER:
        by_source: dict[str, list[DeadLetter]] = {}
        for d in letters:
            if d.format == fmt:
                by_source.setdefault(d.source, []).append(d)
        for source, group in by_source.items():
            outcomes += await _replay_group(session, fmt, source, group, limits)
    await deadletters.mark_replayed(
        session,
        [o.id for o in outcomes if o.accepted],
        [(o.id, o.errors) for o in outcomes if not o.accepted],
    )
    return sorted(outcomes, key=lambda o: o.id)


async def _replay_group(
    session: AsyncSession, fmt: str, source: str, group: list[DeadLetter], limits: XmlLimits
) -> list[ReplayOutcome]:
    if fmt == EDXML:
        result = await ingest_xml(
            session, source, [d.payload for d in group], limits=limits,
            dead_letters=False, strict=False,
        )  # fmt: skip
    else:
        items = []
        for d in group:
            try:
                items.append(json.loads(d.payload))
            except json.JSONDecodeError:
                items.append(None)  # rejected again as "not a JSON object"
        # A dossier placed by its envelope's madonvi (a Hue-S report by the organ it was
        # requested for) kept it as the dead-letter's unit.
        envelopes = [d.unit_ref for d in group] if fmt in (DOSSIER, HUE_S) else None
        result = await ingest_items(
            session, fmt, source, items, dead_letters=False, envelope=envelopes
        )
    failed = {r.index: r.errors for r in result.rejected}
    return [ReplayOutcome(d.id, i not in failed, failed.get(i, [])) for i, d in enumerate(group)]


def count(source: str, result: IngestResult) -> None:
    """Count a committed batch in /metrics (call after commit, so a rollback counts nothing)."""
    for outcome in ("inserted", "updated", "unchanged"):
        n = getattr(result, outcome)
        if n:
            metrics.INGEST_RECORDS.labels(source, result.feed, outcome).inc(n)
    if result.rejected:
        metrics.INGEST_RECORDS.labels(source, result.feed, "rejected").inc(len(result.rejected))
