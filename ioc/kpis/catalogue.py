"""The KPI catalogue as data, the windows, and how a value gets its status.

Ids and formulas are binding (other programs code against them); names, units and default
targets are here so screens, emails and the docs read one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from ioc.errors import Invalid
from ioc.localtime import LOCAL_TZ, WINDOWS

# "open_rate": a Decision 766 rate whose ended part is windowed and whose open part is
# judged now (2.1, 5.2, 5.4); "now_rate": a rate of the catalogue as it is now (3.1).
Kind = Literal["count", "rate", "median", "overdue", "open_rate", "now_rate"]
Direction = Literal["higher", "lower"]
Status = Literal["ok", "warn", "bad", "no_data"]


@dataclass(frozen=True, slots=True)
class Kpi:
    """One indicator: identity, wording, formula (as text), feed, direction, default target,
    and `terms`: what its value is computed from (`ioc.kpis.values.kpi_values`), by kind:

    - `count` / `overdue`: `(n,)` — value = numerator = n, no denominator;
    - `rate`: `(numerator, denominator)` — value = numerator / denominator, null when 0;
    - `median`: `(median seconds, how many)` — value in hours, no numerator;
    - `open_rate`: `(ended on time, ended, open, open past due)` — value = (ended on time +
      open − open past due) / (ended + open), null when 0;
    - `now_rate`: as `rate`, of figures the window does not change.

    A term is a counter of `ioc.kpis.contributions.COUNTERS` or one of the other terms named
    in `ioc.kpis.values.TERMS` (overdue counts, online services, response-time median)."""

    id: str
    name_vi: str
    name_en: str
    unit: Literal["count", "ratio", "hours"]
    kind: Kind
    feed: Literal["dossiers", "reports", "documents", "procedures", "agency_reports"]
    formula: str
    direction: Direction
    target: float | None
    terms: tuple[str, ...] = ()

    @property
    def windowed(self) -> bool:
        """Overdue counts and the catalogue's rates are "now" figures: the window does not
        change them (and they have no history)."""
        return self.kind not in ("overdue", "now_rate")

    @property
    def moves_with_clock(self) -> bool:
        """Whether the value changes with the clock alone (records becoming overdue, or late
        by the 766 deadlines, with no new data)."""
        return self.kind in ("overdue", "open_rate")


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
            "dossiers neither finished nor closed (status 3, 7, 8) nor waiting for the citizen's "
            "supplement (5), past their due moment now (the latest NgayHenTraMoi, else NgayHenTra "
            "plus completed supplement pauses)",
            "lower",
            0.0,
            terms=("overdue_dossiers",),
        ),
        Kpi(
            "dossier_digitized_rate",
            "Tỷ lệ số hóa hồ sơ",
            "Digitised dossier rate",
            "ratio",
            "rate",
            "dossiers",
            "HoSoCoThanhPhanSoHoa = 1 (or a digitised TaiLieuNop file) / all, among dossiers "
            "received in the window",
            "higher",
            1.00,
            terms=("d_digitized", "d_received"),
        ),
        Kpi(
            "dossier_online_payment_rate",
            "Tỷ lệ hồ sơ thanh toán trực tuyến (trên hồ sơ trực tuyến)",
            "Online payment rate",
            "ratio",
            "rate",
            "dossiers",
            "DuocThanhToanTrucTuyen 1 or 2 / online, among online dossiers received in the window",
            "higher",
            None,
            terms=("d_paid", "d_online"),
        ),
        Kpi(
            "online_service_usage_rate",
            "Tỷ lệ dịch vụ công trực tuyến phát sinh hồ sơ trực tuyến",
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
        # Reports of agencies (báo cáo) to the provincial reporting system (docs/kpis.md).
        Kpi(
            "agency_report_online_rate",
            "Tỷ lệ báo cáo gửi trực tuyến",
            "Agency reports filed online",
            "ratio",
            "rate",
            "agency_reports",
            "reports of agencies filed online (through the reporting system) / all filed, "
            "among reports filed in the window (cancelled requests not counted)",
            "higher",
            0.50,
            terms=("ar_online", "ar_filed"),
        ),
        Kpi(
            "agency_report_ontime_rate",
            "Tỷ lệ báo cáo gửi đúng hạn",
            "Agency reports filed on time",
            "ratio",
            "rate",
            "agency_reports",
            "reports of agencies filed by their deadline / all due, among reports whose "
            "deadline falls in the window (one due later today and not filed yet counts as "
            "not on time; cancelled requests not counted)",
            "higher",
            0.90,
            terms=("ar_ontime", "ar_due"),
        ),
        Kpi(
            "agency_report_overdue_open",
            "Báo cáo quá hạn chưa gửi",
            "Agency reports overdue",
            "count",
            "overdue",
            "agency_reports",
            "reports of agencies neither filed nor cancelled whose deadline has passed now",
            "lower",
            0.0,
            terms=("overdue_agency_reports",),
        ),
        # Decision 766/QĐ-TTg (docs/api.md §4; formulas and choices: docs/indicators-766.md);
        # default targets = the indicators' thresholds.
        Kpi(
            "i766_2_1",
            "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn",
            "Dossiers handled early or on time (766: 2.1)",
            "ratio",
            "open_rate",
            "dossiers",
            "(dossiers whose processing ended in the window on time — end minus supplement "
            "time <= NgayHenTra, else the procedure's legal duration in working days; asked "
            "to supplement more than once = late — plus open dossiers within their deadline "
            "now) / (dossiers ended in the window + open dossiers)",
            "higher",
            1.0,
            terms=("i_ontime", "i_ended", "overdue_dossiers766_all", "overdue_dossiers766"),
        ),
        Kpi(
            "i766_3_1",
            "Tỷ lệ TTHC cung cấp dịch vụ công trực tuyến",
            "Procedures offered online (766: 3.1)",
            "ratio",
            "now_rate",
            "procedures",
            "catalogue procedures offered online (TrucTuyen) / all catalogue procedures, "
            "distinct (unit, code), now",
            "higher",
            0.80,
            terms=("services_offered", "overdue_catalogue"),
        ),
        Kpi(
            "i766_3_2",
            "Tỷ lệ dịch vụ công trực tuyến có phát sinh hồ sơ",
            "Online services with dossiers (766: 3.2)",
            "ratio",
            "rate",
            "procedures",
            "online services with >= 1 online dossier received in the window / online services",
            "higher",
            1.0,
            terms=("services_used", "services_offered"),
        ),
        Kpi(
            "i766_3_3",
            "Tỷ lệ hồ sơ TTHC nộp trực tuyến",
            "Dossiers filed online (766: 3.3)",
            "ratio",
            "rate",
            "dossiers",
            "KenhThucHien=2 with an electronic result where result documents are issued / all, "
            "among dossiers received in the window",
            "higher",
            0.50,
            terms=("i_online", "d_received"),
        ),
        Kpi(
            "i766_3_6",
            "Tỷ lệ hồ sơ thanh toán trực tuyến",
            "Dossiers paid online (766: 3.6)",
            "ratio",
            "rate",
            "dossiers",
            "DuocThanhToanTrucTuyen 1 or 2 / fee-bearing (fees > 0 or paid online), among "
            "dossiers received in the window",
            "higher",
            1.0,
            terms=("i_paid", "i_fee"),
        ),
        Kpi(
            "i766_4_1",
            "Tỷ lệ hồ sơ có cấp kết quả giải quyết TTHC điện tử",
            "Dossiers with an electronic result (766: 4.1)",
            "ratio",
            "rate",
            "dossiers",
            "with a result file link / listing result documents, among dossiers finished in "
            "the window",
            "higher",
            1.0,
            terms=("i_eresult", "i_result"),
        ),
        Kpi(
            "i766_4_2",
            "Tỷ lệ hồ sơ TTHC thực hiện số hóa hồ sơ",
            "Digitised dossiers (766: 4.2)",
            "ratio",
            "rate",
            "dossiers",
            "digitised components and an electronic result where result documents are issued "
            "/ all, among dossiers received in the window",
            "higher",
            0.80,
            terms=("i_digit", "d_received"),
        ),
        Kpi(
            "i766_4_3",
            "Tỷ lệ hồ sơ khai thác, sử dụng lại thông tin, dữ liệu số hóa",
            "Dossiers reusing digitised data (766: 4.3)",
            "ratio",
            "rate",
            "dossiers",
            "a component reused (DuocTaiSuDung, DuocLayTuKhoDMQG) / all, among dossiers "
            "received in the window",
            "higher",
            0.80,
            terms=("i_reuse", "d_received"),
        ),
        Kpi(
            "i766_4_5",
            "Tỷ lệ hồ sơ TTHC sử dụng dữ liệu từ CSDL quốc gia về dân cư",
            "Dossiers using the population database (766: 4.5)",
            "ratio",
            "rate",
            "dossiers",
            "VNeID-verified account or a national database consulted / all, among dossiers "
            "received in the window",
            "higher",
            1.0,
            terms=("i_popdb", "d_received"),
        ),
        Kpi(
            "i766_5_2",
            "Tỷ lệ phản ánh, kiến nghị xử lý đúng hạn",
            "Citizen reports handled on time (766: 5.2)",
            "ratio",
            "open_rate",
            "reports",
            "(reports resolved within 15 working days or refused within 2, ended in the "
            "window, plus open reports within 15 working days now) / (reports ended in the "
            "window + open reports)",
            "higher",
            1.0,
            terms=("ir_ontime", "ir_ended", "overdue_reports766_all", "overdue_reports766"),
        ),
        Kpi(
            "i766_5_3",
            "Tỷ lệ hài lòng trong xử lý phản ánh, kiến nghị",
            "Satisfaction with report handling (766: 5.3)",
            "ratio",
            "rate",
            "reports",
            "reports neither rated dissatisfied nor ended late / all, among reports received "
            "in the window",
            "higher",
            1.0,
            terms=("ir_satisfied", "r_received"),
        ),
        Kpi(
            "i766_5_4",
            "Tỷ lệ hài lòng trong tiếp nhận, giải quyết TTHC",
            "Satisfaction with procedures (766: 5.4)",
            "ratio",
            "open_rate",
            "dossiers",
            "1 - (late share of 2.1 + share with a complaint or dislike, not received: 0); "
            "numerator and denominator are 2.1's",
            "higher",
            0.90,
            terms=("i_ontime", "i_ended", "overdue_dossiers766_all", "overdue_dossiers766"),
        ),
    ]
}


def local_moment(now: datetime | None = None) -> datetime:
    """`now` (default the current time) in the local zone; it must be timezone-aware."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise Invalid("`now` must be timezone-aware")
    return moment.astimezone(LOCAL_TZ)


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
