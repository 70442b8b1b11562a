"""Scorecard periods: a month `2026-11`, a quarter `2026-Q4`, a year `2026`, or the current
`month` / `quarter` / `year` (local time, Asia/Ho_Chi_Minh)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ioc.errors import Invalid
from ioc.localtime import FIRST_YEAR, LAST_YEAR, local_date

_FORMS = re.compile(r"^(?P<year>\d{4})(?:-(?P<month>\d{2})|-Q(?P<quarter>[1-4]))?$")
CURRENT = ("month", "quarter", "year")


@dataclass(frozen=True)
class Period:
    """A calendar period: its name (`2026-11`, `2026-Q4`, `2026`), kind and days."""

    name: str
    kind: str  # month | quarter | year
    start: date
    end: date  # inclusive

    def is_closed(self, today: date) -> bool:
        """Over: every day of it is before `today` (its score is then stored once)."""
        return self.end < today

    def contains(self, today: date) -> bool:
        return self.start <= today <= self.end

    def enclosing(self) -> list[str]:
        """The longer periods holding this one (where a yearly entered value also applies)."""
        quarter = f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return {"month": [quarter, str(self.start.year)], "quarter": [str(self.start.year)]}.get(
            self.kind, []
        )

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        if self.kind == "year":
            return period_of(str(self.start.year - 1))
        months = 1 if self.kind == "month" else 3
        index = self.start.year * 12 + self.start.month - 1 - months
        year, month = divmod(index, 12)
        start = date(year, month + 1, 1)
        return month_period(start) if self.kind == "month" else quarter_period(start)


def _month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def month_period(day: date) -> Period:
    return Period(
        f"{day.year}-{day.month:02d}", "month", day.replace(day=1), _month_end(day.year, day.month)
    )


def quarter_period(day: date) -> Period:
    q = (day.month - 1) // 3
    return Period(
        f"{day.year}-Q{q + 1}",
        "quarter",
        date(day.year, 3 * q + 1, 1),
        _month_end(day.year, 3 * q + 3),
    )


def year_period(year: int) -> Period:
    return Period(str(year), "year", date(year, 1, 1), date(year, 12, 31))


def current_period(kind: str, now: datetime) -> Period:
    today = local_date(now)
    if kind == "month":
        return month_period(today)
    if kind == "quarter":
        return quarter_period(today)
    return year_period(today.year)


def period_of(text: str, now: datetime | None = None) -> Period:
    """Parse a period; `month|quarter|year` need `now`."""
    if text in CURRENT:
        if now is None:
            raise Invalid(f"the current {text} needs a moment")
        return current_period(text, now)
    found = _FORMS.match(text)
    if found is None:
        raise Invalid(
            f"period {text!r} is not a month (2026-11), a quarter (2026-Q4), a year (2026) "
            "or month|quarter|year"
        )
    year = int(found["year"])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise Invalid(f"period {text!r} is outside the years {FIRST_YEAR}–{LAST_YEAR}")
    if found["month"]:
        month = int(found["month"])
        if not 1 <= month <= 12:
            raise Invalid(f"period {text!r}: no month {month}")
        return month_period(date(year, month, 1))
    if found["quarter"]:
        return quarter_period(date(year, 3 * int(found["quarter"]) - 2, 1))
    return year_period(year)
