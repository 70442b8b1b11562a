"""The KPI catalogue as data, the windows, and how a value gets its status.

Ids and formulas are binding (other programs code against them); names, units and default
targets are here so screens, emails and the docs read one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ioc.errors import Invalid

# The province's time zone: local days, windows and due dates (SQL uses the name).
LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"
LOCAL_TZ = ZoneInfo(LOCAL_TZ_NAME)

Kind = Literal["count", "rate", "median", "overdue"]
Direction = Literal["higher", "lower"]
Status = Literal["ok", "warn", "bad", "no_data"]


@dataclass(frozen=True, slots=True)
class Kpi:
    """One indicator: identity, wording, formula (as text), feed, direction, default target,
    and `terms`: what its value is computed from (`ioc.kpis.values.kpi_values`), by kind:

    - `count` / `overdue`: `(n,)` — value = numerator = n, no denominator;
    - `rate`: `(numerator, denominator)` — value = numerator / denominator, null when 0;
    - `median`: `(median seconds, how many)` — value in hours, no numerator.

    A term is a counter of `ioc.kpis.contributions.COUNTERS` or one of the other terms named
    in `ioc.kpis.values.TERMS` (overdue counts, online services, response-time median)."""

    id: str
    name_vi: str
    name_en: str
    unit: Literal["count", "ratio", "hours"]
    kind: Kind
    feed: Literal["dossiers", "reports", "documents", "procedures"]
    formula: str
    direction: Direction
    target: float | None
    terms: tuple[str, ...] = ()

    @property
    def windowed(self) -> bool:
        """Overdue counts are "now" figures: the window does not change them."""
        return self.kind != "overdue"


CATALOGUE: dict[str, Kpi] = {
    k.id: k
    for k in [
        Kpi(
            "dossier_received",
            "Hồ sơ tiếp nhận",
            "Dossiers received",
            "count",
            "count",
            "dossiers",
            "dossiers with NgayTiepNhan (received_at) in the window",
            "higher",
            None,
            terms=("d_received",),
        ),
        Kpi(
            "dossier_online_rate",
            "Tỷ lệ hồ sơ trực tuyến",
            "Online dossier rate",
            "ratio",
            "rate",
            "dossiers",
            "KenhThucHien=2 / all, among dossiers received in the window",
            "higher",
            0.50,
            terms=("d_online", "d_received"),
        ),
        Kpi(
            "dossier_ontime_rate",
            "Tỷ lệ hồ sơ giải quyết đúng hạn",
            "Dossiers finished on time",
            "ratio",
            "rate",
            "dossiers",
            "finished with NgayKetThucXuLy <= NgayHenTra (or no due date) / all finished, "
            "among dossiers finished in the window",
            "higher",
            0.95,
            terms=("d_ontime", "d_finished"),
        ),
        Kpi(
            "dossier_overdue_open",
            "Hồ sơ quá hạn chưa giải quyết",
            "Open overdue dossiers",
            "count",
            "overdue",
            "dossiers",
            "dossiers neither finished nor closed (status 3, 7, 8) with NgayHenTra < now",
            "lower",
            0.0,
            terms=("overdue_dossiers",),
        ),
        Kpi(
            "dossier_digitized_rate",
            "Tỷ lệ số hoá hồ sơ",
            "Digitised dossier rate",
            "ratio",
            "rate",
            "dossiers",
            "DaSoHoa / all, among dossiers received in the window",
            "higher",
            1.00,
            terms=("d_digitized", "d_received"),
        ),
        Kpi(
            "dossier_online_payment_rate",
            "Tỷ lệ thanh toán trực tuyến",
            "Online payment rate",
            "ratio",
            "rate",
            "dossiers",
            "ThanhToanTrucTuyen / online, among online dossiers received in the window",
            "higher",
            None,
            terms=("d_paid", "d_online"),
        ),
        Kpi(
            "online_service_usage_rate",
            "Tỷ lệ DVC trực tuyến phát sinh hồ sơ",
            "Online services used",
            "ratio",
            "rate",
            "procedures",
            "online services of the catalogue (TrucTuyen, per unit) with >= 1 online dossier "
            "received in the window / all online services of the unit",
            "higher",
            0.80,
            terms=("services_used", "services_offered"),
        ),
        Kpi(
            "report_received",
            "Phản ánh tiếp nhận",
            "Reports received",
            "count",
            "count",
            "reports",
            "reports with received_at in the window",
            "higher",
            None,
            terms=("r_received",),
        ),
        Kpi(
            "report_ontime_rate",
            "Tỷ lệ phản ánh xử lý đúng hạn",
            "Reports resolved on time",
            "ratio",
            "rate",
            "reports",
            "resolved with resolved_at <= due_at (or no due date) / all resolved, among "
            "reports resolved in the window",
            "higher",
            0.90,
            terms=("r_ontime", "r_resolved"),
        ),
        Kpi(
            "report_overdue_open",
            "Phản ánh quá hạn chưa xử lý",
            "Open overdue reports",
            "count",
            "overdue",
            "reports",
            "reports neither resolved nor rejected with due_at < now",
            "lower",
            0.0,
            terms=("overdue_reports",),
        ),
        Kpi(
            "report_response_p50_hours",
            "Thời gian phản hồi trung vị (giờ)",
            "Median first response (hours)",
            "hours",
            "median",
            "reports",
            "median of first_response_at - received_at in hours, among reports received in "
            "the window that have a response",
            "lower",
            24.0,
            terms=("response_median_seconds", "responses"),
        ),
        Kpi(
            "document_electronic_rate",
            "Tỷ lệ văn bản điện tử",
            "Electronic document rate",
            "ratio",
            "rate",
            "documents",
            "documents exchanged electronically / all documents sent in the window, counted "
            "once at every unit involved (sender and recipients)",
            "higher",
            0.98,
            terms=("doc_electronic", "doc_sent"),
        ),
        Kpi(
            "document_overdue_open",
            "Văn bản quá hạn chưa hoàn thành",
            "Open overdue documents",
            "count",
            "overdue",
            "documents",
            "documents with a due date, not completed by a recipient unit, past the end of "
            "the due date (local) now",
            "lower",
            0.0,
            terms=("overdue_documents",),
        ),
    ]
}

WINDOWS: tuple[str, ...] = ("today", "7d", "month", "quarter", "year")


def local_moment(now: datetime | None = None) -> datetime:
    """`now` (default the current time) in the local zone; it must be timezone-aware."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise Invalid("`now` must be timezone-aware")
    return moment.astimezone(LOCAL_TZ)


def local_date(moment: datetime) -> date:
    """The Asia/Ho_Chi_Minh calendar day of an aware datetime."""
    return moment.astimezone(LOCAL_TZ).date()


def window_days(window: str, today: date) -> tuple[date, date]:
    """First and last local day (inclusive) of `window` on local day `today`.

    `7d` is today and the 6 days before it; the others are calendar periods to date."""
    if window == "today":
        return today, today
    if window == "7d":
        return today - timedelta(days=6), today
    if window == "month":
        return today.replace(day=1), today
    if window == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1), today
    if window == "year":
        return today.replace(month=1, day=1), today
    raise ValueError(f"unknown window {window!r}; one of {', '.join(WINDOWS)}")


def window_periods(window: str, today: date) -> list[tuple[str, date]]:
    """The (grain, period) buckets that exactly cover a window: whole months ('m') before
    the current month, days ('d') of the current month — at most 42 buckets for a year."""
    start, end = window_days(window, today)
    periods: list[tuple[str, date]] = []
    cursor = start
    while cursor <= end:
        if cursor.day == 1 and (cursor.year, cursor.month) != (end.year, end.month):
            periods.append(("m", cursor))
            cursor = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            periods.append(("d", cursor))
            cursor += timedelta(days=1)
    return periods


def status_of(kpi: Kpi, value: float | None, target: float | None, margin: float) -> Status:
    """`no_data` without a value; `bad` beyond the target; `warn` within the margin of it on
    the good side (margin relative to the target, absolute when the target is 0), unless the
    value is already the best possible (a rate of 1, a count of 0); `ok` otherwise."""
    if value is None:
        return "no_data"
    if target is None:
        return "ok"
    band = margin * abs(target) if target else margin
    if kpi.direction == "higher":
        best = 1.0 if kpi.unit == "ratio" else None
        if value < target:
            return "bad"
        if value < target + band and value != best:
            return "warn"
        return "ok"
    if value > target:
        return "bad"
    if value > target - band and value != 0:
        return "warn"
    return "ok"
