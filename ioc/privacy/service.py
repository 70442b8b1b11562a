"""Unmasked reads of citizens' data (each logged), the access log, and the retention purge.

Who may read unmasked data: only `admin` tokens, only through `/api/v1/personal-data/…`,
only within the token's unit, and only with a stated reason — each read is one row of
`personal_data_access_log`, written in the same transaction as the read (no read without its
log row). Everything else `ioc` outputs is masked (`ioc.privacy.mask_record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc import metrics
from ioc.auth import Principal
from ioc.errors import Invalid, NotFound, OutOfScope
from ioc.settings import Settings
from ioc.units import is_within, within_sql

# Keys of personal data in the sources' raw payloads, erased by the purge (top level: the
# sources put the applicant/citizen fields at the top of each record).
RAW_PERSONAL_KEYS = (
    "ChuHoSo", "SoDienThoai", "Email", "DiaChi", "DinhDanhCHS",
    "citizen_name", "citizen_phone", "citizen_email", "tenDayDu", "soDienThoai", "email",
    "SoGiayToChuHoSo", "MaDoiTuong", "Fax", "TaiKhoan",
)  # fmt: skip

DOSSIER_FIELDS = ("applicant_name", "applicant_phone", "applicant_email", "applicant_address")
REPORT_FIELDS = ("citizen_name", "citizen_phone")


@dataclass(frozen=True, slots=True)
class PersonalRecord:
    """One record's personal data, unmasked, with the unit it belongs to."""

    kind: str
    source: str
    source_id: str
    unit_code: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    id: int
    at: datetime
    token_id: str
    token_name: str
    role: str
    token_unit: str | None
    record_kind: str
    record_key: str
    unit_code: str | None
    fields: list[str]
    reason: str
    route: str


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) < 5:
        raise Invalid(
            "say why you need this citizen's data (?reason=…, at least 5 characters); "
            "the reason is kept in the personal-data access log"
        )
    return reason


async def log_access(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    key: str,
    unit_code: str | None,
    fields: list[str],
    reason: str,
    route: str,
) -> None:
    """Record one unmasked read; call it in the transaction that reads the data."""
    await session.execute(
        text(
            """
            INSERT INTO personal_data_access_log
                (token_id, token_name, role, token_unit, record_kind, record_key, unit_code,
                 fields, reason, route)
            VALUES (:tid, :tname, :role, :tunit, :kind, :key, :unit, :fields, :reason, :route)
            """
        ),
        {
            "tid": principal.token_id,
            "tname": principal.name,
            "role": principal.role,
            "tunit": principal.unit_code,
            "kind": kind,
            "key": key,
            "unit": unit_code,
            "fields": fields,
            "reason": reason,
            "route": route,
        },
    )
    metrics.PERSONAL_DATA_READS.labels(kind).inc()


async def read_personal(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    source_id: str,
    source: str | None,
    reason: str,
    route: str,
) -> list[PersonalRecord]:
    """The unmasked personal data of the dossiers/reports with this id, each read logged.

    Records outside the token's unit are not shown (403 if all are outside, 404 if none)."""
    reason = _check_reason(reason)
    table, columns = (
        ("dossiers", DOSSIER_FIELDS) if kind == "dossier" else ("reports", REPORT_FIELDS)
    )
    rows = (
        await session.execute(
            text(
                f"SELECT source, source_id, unit_code, {', '.join(columns)} FROM {table} "
                "WHERE source_id = :sid AND (CAST(:src AS text) IS NULL OR source = :src) "
                "ORDER BY source"
            ),
            {"sid": source_id, "src": source},
        )
    ).all()
    if not rows:
        raise NotFound(f"no {kind} with id {source_id!r}" + (f" from {source}" if source else ""))
    visible = [
        r
        for r in rows
        if principal.unit_code is None or await is_within(session, principal.unit_code, r.unit_code)
    ]
    if not visible:
        raise OutOfScope(f"{kind} {source_id!r} is outside this token's unit {principal.unit_code}")
    out: list[PersonalRecord] = []
    for row in visible:
        data = {c: getattr(row, c) for c in columns}
        await log_access(
            session,
            principal,
            kind=kind,
            key=f"{row.source}:{row.source_id}",
            unit_code=row.unit_code,
            fields=[c for c, v in data.items() if v is not None],
            reason=reason,
            route=route,
        )
        out.append(PersonalRecord(kind, row.source, row.source_id, row.unit_code, data))
    return out


async def list_access_log(
    session: AsyncSession,
    principal: Principal,
    *,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AccessLogEntry]:
    """Newest first; a unit-bound admin sees the reads of records of its own subtree only."""
    rows = (
        await session.execute(
            text(
                f"""
                SELECT l.id, l.at, l.token_id::text, l.token_name, l.role, l.token_unit,
                    l.record_kind, l.record_key, l.unit_code, l.fields, l.reason, l.route
                FROM personal_data_access_log l
                WHERE (CAST(:since AS timestamptz) IS NULL OR l.at >= :since)
                  AND (CAST(:scope AS text) IS NULL OR {within_sql(":scope", "l.unit_code")})
                ORDER BY l.id DESC
                LIMIT :limit
                """
            ),
            {"since": since, "scope": principal.unit_code, "limit": limit},
        )
    ).all()
    return [AccessLogEntry(*r) for r in rows]


@dataclass
class PurgeResult:
    """How many rows each step erased (or would erase, in a dry run)."""

    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


async def purge(
    session: AsyncSession,
    *,
    personal_data_days: int,
    dead_letter_days: int,
    access_log_days: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Erase personal data past retention, in set-based statements (one per table).

    - dossiers closed (result returned, finished, or closed without result) more than
      `personal_data_days` ago: applicant columns set to NULL, personal keys removed from raw;
    - reports resolved or rejected that long ago: citizen columns NULL, raw keys removed;
    - dead letters older than `dead_letter_days`: deleted (their payload is raw source text);
    - access-log rows older than `access_log_days`: deleted.

    `change_seq` is deliberately not bumped: no KPI depends on personal data, and a purge of
    thousands of rows must not make the KPI engine recompute them.
    """
    clock = "CAST(:now AS timestamptz)" if now is not None else "now()"
    params: dict[str, Any] = {
        "keys": list(RAW_PERSONAL_KEYS),
        "pd": timedelta(days=personal_data_days),
        "dl": timedelta(days=dead_letter_days),
        "al": timedelta(days=access_log_days),
    }
    if now is not None:
        params["now"] = now
    pd_cut = f"{clock} - CAST(:pd AS interval)"
    dl_cut = f"{clock} - CAST(:dl AS interval)"
    al_cut = f"{clock} - CAST(:al AS interval)"
    dossier_where = f"""
        coalesce(returned_at, finished_at,
                 CASE WHEN status IN (3, 7, 8) THEN source_updated_at END) < {pd_cut}
        AND (applicant_name IS NOT NULL OR applicant_phone IS NOT NULL
             OR applicant_email IS NOT NULL OR applicant_address IS NOT NULL
             OR raw ?| CAST(:keys AS text[]))"""
    report_where = f"""
        coalesce(resolved_at, CASE WHEN status = 'rejected' THEN source_updated_at END)
            < {pd_cut}
        AND (citizen_name IS NOT NULL OR citizen_phone IS NOT NULL
             OR raw ?| CAST(:keys AS text[]))"""
    steps = {
        "dossiers": (
            f"UPDATE dossiers SET applicant_name = NULL, applicant_phone = NULL, "
            f"applicant_email = NULL, applicant_address = NULL, "
            f"raw = raw - CAST(:keys AS text[]) WHERE {dossier_where}",
            f"SELECT count(*) FROM dossiers WHERE {dossier_where}",
        ),
        "reports": (
            f"UPDATE reports SET citizen_name = NULL, citizen_phone = NULL, "
            f"raw = raw - CAST(:keys AS text[]) WHERE {report_where}",
            f"SELECT count(*) FROM reports WHERE {report_where}",
        ),
        "dead_letters": (
            f"DELETE FROM dead_letters WHERE received_at < {dl_cut}",
            f"SELECT count(*) FROM dead_letters WHERE received_at < {dl_cut}",
        ),
        "personal_data_access_log": (
            f"DELETE FROM personal_data_access_log WHERE at < {al_cut}",
            f"SELECT count(*) FROM personal_data_access_log WHERE at < {al_cut}",
        ),
    }
    result = PurgeResult(dry_run=dry_run)
    for table, (change, count) in steps.items():
        if dry_run:
            result.counts[table] = int((await session.execute(text(count), params)).scalar_one())
        else:
            done = await session.execute(text(change), params)
            result.counts[table] = int(done.rowcount)  # type: ignore[attr-defined]
            metrics.PERSONAL_DATA_PURGED.labels(table).inc(result.counts[table])
    return result


async def purge_with_settings(
    session: AsyncSession, settings: Settings, *, dry_run: bool = False
) -> PurgeResult:
    """`purge` with the retention periods of `settings`."""
    return await purge(
        session,
        personal_data_days=settings.personal_data_retention_days,
        dead_letter_days=settings.dead_letter_retention_days,
        access_log_days=settings.access_log_retention_days,
        dry_run=dry_run,
    )
