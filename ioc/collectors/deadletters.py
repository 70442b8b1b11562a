"""Dead-letters: every record the pipeline could not take in, kept with its raw payload and
reasons until it is replayed (`ioc.collectors.service.replay_dead_letters`).

Listing masks citizens' data in the payload; reading one payload whole is logged in the
personal-data access log. Every function runs in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ioc.auth import Principal
from ioc.collectors.agency_reports import AGENCY_REPORT
from ioc.collectors.dossiers import DOSSIER, PROGRESS
from ioc.collectors.edxml import EDXML
from ioc.collectors.procedures import PROCEDURE
from ioc.collectors.records import Rejection
from ioc.collectors.reports import DANANG, HUE_S, REPORT
from ioc.collectors.store import raw_connection
from ioc.errors import Invalid, NotFound, OutOfScope
from ioc.privacy import log_access, mask_record
from ioc.units import is_within

FEED_OF = {
    DOSSIER: "dossiers",
    PROGRESS: "dossiers",
    PROCEDURE: "procedures",
    REPORT: "reports",
    DANANG: "reports",
    HUE_S: "reports",
    EDXML: "documents",
    AGENCY_REPORT: "agency_reports",
}


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
    conn = await raw_connection(session)
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
    conn = await raw_connection(session)
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


async def count_dead_letters(
    session: AsyncSession,
    *,
    pending: bool = True,
    source: str | None = None,
    feed: str | None = None,
) -> int:
    """How many dead-letters `list_dead_letters` would page through with these filters."""
    conn = await raw_connection(session)
    total: int = await conn.fetchval(
        """
        SELECT count(*) FROM dead_letters
        WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR feed = $2)
          AND (NOT $3 OR replayed_at IS NULL)
        """,
        source,
        feed,
        pending,
    )
    return total


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
    conn = await raw_connection(session)
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


async def pending_for_replay(
    session: AsyncSession, ids: Sequence[int] | None, limit: int
) -> list[DeadLetter]:
    """Pending dead-letters (these ids, or all, oldest first), locked for this transaction;
    ones another transaction is replaying are skipped. `NotFound` if a given id is not
    pending or is locked."""
    conn = await raw_connection(session)
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
    return letters


async def mark_replayed(
    session: AsyncSession, accepted: Sequence[int], rejected: Sequence[tuple[int, list[str]]]
) -> None:
    """Mark `accepted` ids replayed; keep the `rejected` ones pending with their new reasons."""
    conn = await raw_connection(session)
    await conn.execute(
        "UPDATE dead_letters SET replayed_at = now(), replay_outcome = 'accepted' "
        "WHERE id = ANY($1::bigint[])",
        list(accepted),
    )
    await conn.execute(
        """
        UPDATE dead_letters d SET reasons = u.reasons::jsonb, replay_outcome = 'rejected again',
            last_seen_at = now()
        FROM unnest($1::bigint[], $2::text[]) AS u(id, reasons) WHERE d.id = u.id
        """,
        [i for i, _ in rejected],
        [json.dumps(errors, ensure_ascii=False) for _, errors in rejected],
    )
