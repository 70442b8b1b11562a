"""What the 766 indicators need of a dossier, beyond its status and times (docs/api.md §4,
the column contract in docs/collectors.md): placing a dossier that names no unit, the
columns of its facts, and what progress steps add to them (closing, acceptance, supplement
requests). Pure functions; `store` runs the SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ioc.collectors.dossiers import CLOSED, FINISHED
from ioc.collectors.records import DossierRecord, ProgressStep, Rejection

# Sent again with an empty supplement list, a dossier keeps what its progress steps recorded
# (the store's merge rule for these columns).
SUPPLEMENT_COLUMNS = (
    "supplements", "supplement_count", "supplement_requested_at", "supplement_seconds",
    "due_moved_at",
)  # fmt: skip
# Statuses that do not make a dossier "accepted" when ioc sees it move to them: registered
# online (1), withdrawn (7) — a dossier withdrawn before acceptance stays not accepted.
NOT_ACCEPTING = (1, 7)
PROGRESS_ORIGIN = "progress"


def close_when_seen(records: Iterable[DossierRecord], seen_at: datetime) -> None:
    """A dossier in a closed status (3, 7, 8) without `NgayTuChoi` is closed when ioc first
    sees it so (the store keeps the earliest closing)."""
    for r in records:
        if r.closed_at is None and r.status in CLOSED:
            r.closed_at = seen_at


async def infer_finished(
    conn: Any, source: str, records: Sequence[DossierRecord], seen_at: datetime
) -> None:
    """A finished dossier (9, 10) sent without `NgayKetThucXuLy` or `NgayTra` (a school
    admission system syncs only its status) finished when ioc first saw it so: the time
    already stored, else now."""
    open_ended = [r for r in records if r.status in FINISHED and r.finished_at is None]
    if not open_ended:
        return
    rows = await conn.fetch(
        "SELECT source_id, finished_at FROM dossiers WHERE source = $1 "
        "AND source_id = ANY($2::text[]) AND finished_at IS NOT NULL",
        source,
        [r.source_id for r in open_ended],
    )
    known = {row["source_id"]: row["finished_at"] for row in rows}
    for r in open_ended:
        r.finished_at = known.get(r.source_id, seen_at)


# --- the unit of a dossier without MaDonVi ----------------------------------------------


def unit_candidates(records: Iterable[DossierRecord]) -> list[str]:
    """Every reference the records may be placed by (for one `resolve_units` query)."""
    return [u for r in records for u in (r.unit_ref, *r.unit_fallbacks)]


def choose_units(
    records: list[DossierRecord], units: Mapping[str, str], rejected: list[Rejection]
) -> list[DossierRecord]:
    """Place each dossier without `MaDonVi` by the first of its candidates that is a unit
    code or a mapped organ (the organ prefixing `MaHoSo`, then the envelope's `madonvi`);
    one with none is rejected naming them. Records with `MaDonVi` pass unchanged (an
    unknown `MaDonVi` is rejected later, as before)."""
    kept = []
    for rec in records:
        if rec.unit_given:
            kept.append(rec)  # an unknown MaDonVi is rejected by `place_units`, as before
            continue
        candidates = (rec.unit_ref, *rec.unit_fallbacks)
        found = next((u for u in candidates if u in units), None)
        if found is not None:
            rec.unit_ref = found
            kept.append(rec)
            continue
        rejected.append(
            Rejection(
                rec.index,
                rec.source_id,
                [
                    "MaDonVi: absent, and none of "
                    + ", ".join(repr(u) for u in candidates)
                    + " (the organ code prefixing MaHoSo, the envelope's madonvi) is a loaded "
                    "unit code or mapped organ id; load it with `ioc organs load`, then replay"
                ],
                rec.raw,
                "dossier",
                candidates[-1],
            )
        )
    return kept


# --- progress steps ---------------------------------------------------------------------


def step_facts(
    steps: Sequence[ProgressStep], ids: Mapping[str, int], current: Mapping[int, str]
) -> tuple[list[Any], ...]:
    """Per dossier the steps touch: (ids, first closing time, accepting?, new supplement list
    or None, its count, latest request, completed seconds) — the arrays `_APPLY_STEPS` takes.

    A step with status 3, 7 or 8 closes the dossier at its time (the earliest wins); one with
    another status than 1 or 7 marks it accepted. Supplement requests come from the
    dossier's own `DanhSachHoSoBoSung` when the source sends them; for a dossier whose list
    has none, a step with status 5 records a request at its time and the next step with
    another status completes it (docs/collectors.md)."""
    by_dossier: dict[int, list[ProgressStep]] = {}
    for step in steps:
        by_dossier.setdefault(ids[step.source_id], []).append(step)
    out: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    for dossier_id, group in by_dossier.items():
        group.sort(key=lambda s: s.at)
        closed = [s.at for s in group if s.status in CLOSED]
        new = _supplements_from_steps(json.loads(current.get(dossier_id) or "[]"), group)
        values = (
            dossier_id,
            min(closed) if closed else None,
            any(s.status not in NOT_ACCEPTING for s in group),
            json.dumps(new) if new is not None else None,
            len(new) if new is not None else None,
            _latest_request(new),
            _seconds(new) if new is not None else None,
        )
        for column, value in zip(out, values, strict=True):
            column.append(value)
    return out


def _supplements_from_steps(
    entries: list[dict[str, Any]], steps: list[ProgressStep]
) -> list[dict[str, Any]] | None:
    """The dossier's supplement list after these steps, or None when unchanged. A list the
    source sent (entries without `origin`) is the source's to keep: steps never touch it."""
    if any(e.get("origin") != PROGRESS_ORIGIN for e in entries):
        return None
    result = [dict(e) for e in entries]
    changed = False
    for step in steps:
        at = step.at.isoformat()
        open_entry = next((e for e in result if e.get("completed_at") is None), None)
        if step.status == 5:
            known = any(e.get("requested_at") == at for e in result)
            if open_entry is None and not known:
                result.append(
                    {"requested_at": at, "completed_at": None, "due_before": None,
                     "due_after": None, "origin": PROGRESS_ORIGIN}
                )  # fmt: skip
                changed = True
        elif (
            open_entry is not None and datetime.fromisoformat(open_entry["requested_at"]) < step.at
        ):
            open_entry["completed_at"] = at
            changed = True
    return result if changed else None


def _latest_request(entries: list[dict[str, Any]] | None) -> datetime | None:
    times = [datetime.fromisoformat(e["requested_at"]) for e in entries or [] if e["requested_at"]]
    return max(times) if times else None


def _seconds(entries: list[dict[str, Any]]) -> int:
    total = 0
    for e in entries:
        if e.get("requested_at") and e.get("completed_at"):
            pause = datetime.fromisoformat(e["completed_at"]) - datetime.fromisoformat(
                e["requested_at"]
            )
            total += max(0, int(pause.total_seconds()))
    return total
