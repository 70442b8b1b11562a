"""Ingest entry points (push, pull and replay all come through here) and dead-letters.

Every function takes the caller's session and never commits: a push request, a pulled page
with its cursor, or a replay is one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.auth import Principal
from ioc.collectors import documents as docstore
from ioc.collectors import store
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
from ioc.errors import Invalid, NotFound, OutOfScope
from ioc.privacy import log_access, mask_record
from ioc.units import is_within

FEEDS = ("dossiers", "procedures", "reports", "documents")
FEED_OF = {
    DOSSIER: "dossiers",
    PROGRESS: "dossiers",
    PROCEDURE: "procedures",
    REPORT: "reports",
    DANANG: "reports",
    HUE_S: "reports",
    EDXML: "documents",
}
# Replay order: what others refer to first (a step needs its dossier).
REPLAY_ORDER = (PROCEDURE, DOSSIER, PROGRESS, REPORT, DANANG, HUE_S, EDXML)


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
        result = await store.store_dossiers(session, source, dossiers, rejected, scope)
    elif fmt == PROGRESS:
        steps: list[ProgressStep] = []
        for i, obj in enumerate(items):
            (rejected if isinstance(p2 := parse_step(i, obj), Rejection) else steps).append(p2)  # type: ignore[arg-type]
        result = await store.store_steps(session, source, steps, rejected, scope)
    elif fmt == PROCEDURE:
        procs: list[ProcedureRecord] = []
        for i, obj in enumerate(items):
            (rejected if isinstance(p3 := parse_procedure(i, obj), Rejection) else procs).append(p3)  # type: ignore[arg-type]
        result = await store.store_procedures(session, source, procs, rejected, scope)
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
        result = await store.store_reports(session, source, reports, rejected, scope)
    else:
        raise Invalid(f"unknown record format {fmt!r}")
    rejected.sort(key=lambda r: r.index)
    result.rejected = rejected
    if dead_letters and rejected:
        await store_dead_letters(session, source, rejected)
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
        await store_dead_letters(session, source, result.rejected)
    return result


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


# --- dead-letters -----------------------------------------------------------------------


async def store_dead_letters(
    session: AsyncSession, source: str, rejected: Sequence[Rejection]
) -> None:
    """Keep every rejected record with its raw payload and reasons. A record rejected again
    with the same payload while still pending bumps `times_seen` instead of adding a row.

    Identical rejects within one batch (`[{}, {}]`) are folded here first, each seen-count
    added to `times_seen`: `ON CONFLICT DO UPDATE` cannot touch one row twice in a statement
    (CardinalityViolationError → the whole batch failed with 500)."""
    folded: dict[tuple[str, str], tuple[Rejection, int]] = {}
    for r in rejected:
        key = (r.format, r.payload)
        seen = folded.get(key)
        # the last reject of a payload wins (its reasons are as good as any, and the newest)
        folded[key] = (r, 1 if seen is None else seen[1] + 1)
    letters = [(_storable_rejection(r), n) for r, n in folded.values()]
    conn = await store.raw_connection(session)
    await conn.execute(
        """
        INSERT INTO dead_letters AS dl (source, feed, format, record_id, unit_code,
            content_type, payload, payload_sha256, reasons, times_seen)
        SELECT $1, f.feed, f.format, f.record_id, f.unit_ref, f.content_type, f.payload,
               sha256(convert_to(f.payload, 'UTF8')), f.reasons::jsonb, f.times_seen
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::text[], $9::int[])
            AS f(feed, format, record_id, unit_ref, content_type, payload, reasons, times_seen)
        ON CONFLICT (source, format, payload_sha256) WHERE replayed_at IS NULL DO UPDATE SET
            reasons = EXCLUDED.reasons, times_seen = dl.times_seen + EXCLUDED.times_seen,
            last_seen_at = now()
        """,
        source,
        [FEED_OF.get(r.format, "unknown") for r, _ in letters],
        [r.format for r, _ in letters],
        [r.record_id for r, _ in letters],
        [r.unit_ref for r, _ in letters],
        ["application/xml" if r.format == EDXML else "application/json" for r, _ in letters],
        [r.payload for r, _ in letters],
        [json.dumps(r.errors, ensure_ascii=False) for r, _ in letters],
        [n for _, n in letters],
    )


def _storable(text: str | None) -> str | None:
    """`text` as PostgreSQL's text type takes it: a NUL or lone surrogate (the very reason a
    record may have been rejected) is written as its escape rather than failing the insert."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def _storable_rejection(r: Rejection) -> Rejection:
    return Rejection(
        r.index,
        _storable(r.record_id),
        [_storable(e) or "" for e in r.errors],
        _storable(r.payload) or "",
        r.format,
        _storable(r.unit_ref),
    )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    source: str
    feed: str
    format: str
    record_id: str | None
    unit_ref: str | None
    content_type: str
    payload: str
    reasons: list[str]
    received_at: datetime
    last_seen_at: datetime
    times_seen: int
    replayed_at: datetime | None
    replay_outcome: str | None

    def as_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """The listing shape; `payload` masked unless `masked=False` (callers that pass it
        must have logged the read: `read_dead_letter`)."""
        return {
            "id": self.id,
            "source": self.source,
            "feed": self.feed,
            "format": self.format,
            "record_id": self.record_id,
            "unit": self.unit_ref,
            "content_type": self.content_type,
            "payload": masked_payload(self) if masked else self.payload,
            "payload_masked": masked,
            "payload_bytes": len(self.payload.encode("utf-8")),
            "reasons": self.reasons,
            "received_at": self.received_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "times_seen": self.times_seen,
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "replay_outcome": self.replay_outcome,
        }


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return mask_record(value)
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def masked_payload(letter: DeadLetter) -> str | None:
    """The payload with citizens' data masked, or None when it cannot be masked reliably.

    JSON objects (and arrays of them) go through `mask_record`, re-serialised as JSON text
    so the listing keeps its shape. A payload that is not a JSON object or array (a bare
    string may be a name, unparseable text may be anything) and edXML (free text in its
    elements, and a mangled envelope cannot be walked) are withheld: the listing shows
    `payload_bytes`, and `GET /api/v1/dead-letters/{id}/payload?reason=` shows it whole."""
    if letter.format == EDXML or letter.content_type != "application/json":
        return None
    try:
        value = json.loads(letter.payload)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict | list):
        return None
    return json.dumps(_mask_json(value), ensure_ascii=False)


_DL_COLUMNS = (
    "id, source, feed, format, record_id, unit_code, content_type, payload, reasons::text, "
    "received_at, last_seen_at, times_seen, replayed_at, replay_outcome"
)


def _dead_letter(row: Any) -> DeadLetter:
    values = list(row)
    values[8] = json.loads(values[8])
    return DeadLetter(*values)


async def list_dead_letters(
    session: AsyncSession,
    *,
    pending: bool = True,
    source: str | None = None,
    feed: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[DeadLetter]:
    """Dead-letters in id order (oldest first), pending only by default; page with `after_id`."""
    conn = await store.raw_connection(session)
    rows = await conn.fetch(
        f"""
        SELECT {_DL_COLUMNS} FROM dead_letters
        WHERE id > $1 AND ($2::text IS NULL OR source = $2) AND ($3::text IS NULL OR feed = $3)
          AND (NOT $4 OR replayed_at IS NULL)
        ORDER BY id LIMIT $5
        """,
        after_id,
        source,
        feed,
        pending,
        limit,
    )
    return [_dead_letter(r) for r in rows]


async def read_dead_letter(
    session: AsyncSession, principal: Principal, letter_id: int, *, reason: str, route: str
) -> DeadLetter:
    """One dead-letter with its payload unmasked, the read logged in the personal-data
    access log (kind `dead_letter`) in the caller's transaction, as `/api/v1/personal-data`
    does. A unit-bound admin reads only dead-letters whose unit is a known unit of its
    subtree (a record rejected for an unknown unit belongs to nobody's subtree)."""
    reason = reason.strip()
    if len(reason) < 5:
        raise Invalid(
            "say why you need this record's raw payload (?reason=…, at least 5 characters); "
            "the reason is kept in the personal-data access log"
        )
    conn = await store.raw_connection(session)
    row = await conn.fetchrow(f"SELECT {_DL_COLUMNS} FROM dead_letters WHERE id = $1", letter_id)
    if row is None:
        raise NotFound(f"no dead-letter {letter_id}")
    letter = _dead_letter(row)
    scope = principal.unit_code
    if scope is not None and (
        letter.unit_ref is None or not await is_within(session, scope, letter.unit_ref)
    ):
        raise OutOfScope(
            f"dead-letter {letter_id} is not for a unit within this token's unit "
            f"{principal.unit_code}"
        )
    await log_access(
        session,
        principal,
        kind="dead_letter",
        key=str(letter_id),
        unit_code=letter.unit_ref,
        fields=["payload"],
        reason=reason,
        route=route,
    )
    return letter


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
    conn = await store.raw_connection(session)
    rows = await conn.fetch(
        f"""
        SELECT {_DL_COLUMNS} FROM dead_letters
        WHERE replayed_at IS NULL AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))
        ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
        """,
        list(ids) if ids is not None else None,
        limit,
    )
    letters = [_dead_letter(r) for r in rows]
    if ids is not None:
        missing = sorted(set(ids) - {d.id for d in letters})
        if missing:
            raise NotFound(
                f"dead-letter(s) {', '.join(map(str, missing))} do not exist, are already "
                "replayed, or are being replayed by someone else"
            )
    outcomes: list[ReplayOutcome] = []
    for fmt in REPLAY_ORDER:
        by_source: dict[str, list[DeadLetter]] = {}
        for d in letters:
            if d.format == fmt:
                by_source.setdefault(d.source, []).append(d)
        for source, group in by_source.items():
            outcomes += await _replay_group(session, fmt, source, group, limits)
    accepted = [o.id for o in outcomes if o.accepted]
    still = [o for o in outcomes if not o.accepted]
    await conn.execute(
        "UPDATE dead_letters SET replayed_at = now(), replay_outcome = 'accepted' "
        "WHERE id = ANY($1::bigint[])",
        accepted,
    )
    await conn.execute(
        """
        UPDATE dead_letters d SET reasons = u.reasons::jsonb, replay_outcome = 'rejected again',
            last_seen_at = now()
        FROM unnest($1::bigint[], $2::text[]) AS u(id, reasons) WHERE d.id = u.id
        """,
        [o.id for o in still],
        [json.dumps(o.errors, ensure_ascii=False) for o in still],
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
