"""Reports of agencies (*báo cáo*, the provincial reporting system): the fourth feed.

A report is requested of a unit (the reporting body) for one period with a deadline, and is
filed — online through the reporting system, or on paper — at some time. Named
`agency_report` everywhere: the hotline's citizen reports (*phản ánh*) are `reports`.

The wire format is ioc's own (docs/collectors.md, "Reports of agencies", says where each
field comes from: Decree 09/2019/NĐ-CP's elements of a reporting regime, a public reporting
system's records). Version order: (`updated_at` if sent, else the latest of requested /
filed; status rank requested < filed < accepted = cancelled).

Also here: `overdue_agency_reports`, the open overdue reports of a unit's subtree (the
digest lists them beside the KPI `agency_report_overdue_open`, which counts the same set).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.collectors import tables
from ioc.collectors.fields import Reader, raw_json
from ioc.collectors.records import AgencyReportRecord, Rejection
from ioc.collectors.store import History, Upsert
from ioc.collectors.timefmt import BadValue, iso
from ioc.localtime import LOCAL_TZ
from ioc.units import subtree_sql

AGENCY_REPORT = "agency_report"
FEED = "agency_reports"

STATUSES = ("requested", "filed", "accepted", "cancelled")
STATUS_RANK = {"requested": 0, "filed": 1, "accepted": 2, "cancelled": 2}
STATUS_RANK_SQL = "CASE {col} WHEN 'requested' THEN 0 WHEN 'filed' THEN 1 ELSE 2 END"
# Decree 09/2019/NĐ-CP: periodic reports (weekly is the provinces' own practice, e.g. the
# IOC's weekly progress reports), thematic and ad-hoc ones.
FREQUENCIES = ("weekly", "monthly", "quarterly", "half_year", "yearly", "thematic", "ad_hoc")
# How a report was sent (Decree 09/2019: a paper report or an electronic one).
CHANNELS = {
    "online": "online",
    "electronic": "online",
    "điện tử": "online",
    "báo cáo điện tử": "online",
    "paper": "paper",
    "giấy": "paper",
    "báo cáo giấy": "paper",
}
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$|^(\d{1,2})/(\d{1,2})/(\d{4})$")


def deadline(field: str, value: object) -> datetime:
    """A deadline: an ISO 8601 time, or a date alone (`2026-11-20`, `20/11/2026`) meaning
    the end of that local day — Decree 09 sets deadlines as days ("chậm nhất ngày 20")."""
    if isinstance(value, str) and (m := _DAY.match(value.strip())):
        try:
            day = (
                date(int(m[1]), int(m[2]), int(m[3]))
                if m[1]
                else date(int(m[6]), int(m[5]), int(m[4]))
            )
        except ValueError:
            raise BadValue(f"{field}: {value!r} is not a valid calendar date") from None
        return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=LOCAL_TZ)
    return iso(field, value)


def parse_agency_report(index: int, obj: object) -> AgencyReportRecord | Rejection:
    """One record of docs/collectors.md's agency-report format → a record, or a rejection
    listing every reason."""
    if not isinstance(obj, Mapping):
        return Rejection(index, None, ["not a JSON object"], raw_json(obj), AGENCY_REPORT)
    r = Reader(obj)
    source_id = r.ident("id")
    unit_ref = r.ident("unit")
    requested = r.time("requested_at", iso, required=True)
    due = r.time("due_at", deadline, required=True)
    status = _choice(r, "status", STATUSES, required=True)
    frequency = _choice(r, "frequency", FREQUENCIES, required=False)
    filed = r.time("filed_at", iso, required=False)
    updated = r.time("updated_at", iso, required=False)
    channel = _channel(r)
    if status in ("filed", "accepted"):
        if filed is None and not obj.get("filed_at"):  # absent or empty (a bad one: above)
            r.fail(f"status {status} needs filed_at (when the report was sent)")
        if channel is None and not obj.get("channel"):
            r.fail(f"status {status} needs channel (online or paper)")
    if status == "requested" and filed is not None:
        r.fail("status requested but filed_at is set (send status filed)")
    if requested is not None and due is not None and due < requested:
        r.fail(f"due_at {due.isoformat()} is before requested_at {requested.isoformat()}")
    if (
        r.errors
        or source_id is None
        or unit_ref is None
        or requested is None
        or due is None
        or status is None
    ):
        return Rejection(index, source_id, r.errors, r.raw, AGENCY_REPORT, unit_ref)
    if updated is None:
        updated = max(t for t in (requested, filed) if t is not None)
    return AgencyReportRecord(
        index=index,
        source_id=source_id,
        unit_ref=unit_ref,
        regime=r.text("regime"),
        title=r.text("title"),
        period=r.text("period"),
        frequency=frequency,
        receiver=r.text("receiver"),
        requested_at=requested,
        due_at=due,
        status=status,
        filed_at=filed,
        channel=channel if filed is not None else None,
        source_updated_at=updated,
        raw=r.raw,
    )


def _choice(r: Reader, name: str, allowed: tuple[str, ...], *, required: bool) -> str | None:
    value = r.obj.get(name)
    if value is None or value == "":
        if required:
            r.fail(f"{name}: required, one of {', '.join(allowed)}")
        return None
    if value not in allowed:
        r.fail(f"{name}: unknown value {value!r} (expected one of {', '.join(allowed)})")
        return None
    return str(value)


def _channel(r: Reader) -> str | None:
    value = r.obj.get("channel")
    if value is None or value == "":
        return None
    folded = (
        unicodedata.normalize("NFC", value).casefold().strip() if isinstance(value, str) else None
    )
    channel = CHANNELS.get(folded) if folded is not None else None
    if channel is None:
        r.fail(f"channel: unknown value {value!r} (expected online or paper)")
    return channel


AGENCY_REPORTS: Upsert[AgencyReportRecord] = Upsert(
    FEED,
    tables.agency_reports,
    key=("source", "source_id"),
    unit_field="unit",
    version=lambda r: (r.source_updated_at, STATUS_RANK[r.status]),
    newer=f"({{t}}.source_updated_at, {STATUS_RANK_SQL.format(col='{t}.status')})",
    changed=("raw", "unit_code"),
    history=History(tables.agency_report_history, "agency_report_id"),
)


# --- the overdue ones of a unit ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverdueAgencyReport:
    """A report requested of a unit, not filed, past its deadline."""

    source: str
    id: str
    unit_code: str
    unit_name: str | None
    title: str | None
    period: str | None
    regime: str | None
    requested_at: datetime
    due_at: datetime
    overdue_days: int  # whole days past the deadline


async def overdue_agency_reports(
    session: AsyncSession, unit_id: str | int, limit: int = 20, *, now: datetime | None = None
) -> list[OverdueAgencyReport]:
    """The reports requested of `unit_id` or any unit under it that are neither filed nor
    cancelled and whose deadline has passed at `now` (default: the current time), most
    overdue first; at most `limit`. The same set the KPI `agency_report_overdue_open`
    counts."""
    moment = now or datetime.now(UTC)
    rows = await session.execute(
        text(
            f"""
            SELECT a.source, a.source_id, a.unit_code, u.name, a.title, a.period, a.regime,
                   a.requested_at, a.due_at
            FROM agency_reports a LEFT JOIN units u ON u.code = a.unit_code
            WHERE a.filed_at IS NULL AND a.status <> 'cancelled' AND a.due_at < :now
              AND a.unit_code IN {subtree_sql(":unit")}
            ORDER BY a.due_at, a.unit_code, a.source_id
            LIMIT :limit
            """
        ),
        {"unit": str(unit_id), "now": moment, "limit": limit},
    )
    return [
        OverdueAgencyReport(
            source=r[0],
            id=r[1],
            unit_code=r[2],
            unit_name=r[3],
            title=r[4],
            period=r[5],
            regime=r[6],
            requested_at=r[7],
            due_at=r[8],
            overdue_days=int((moment - r[8]).total_seconds() // 86400),
        )
        for r in rows
    ]
