"""Vietnam's working days, for the deadlines the Decision 766 indicators judge by.

A deadline of "N working days" skips Saturdays, Sundays and the public holidays (Tết, Hùng
Kings, 30/4, 1/5, 2/9 and their substitute days off), and counts the Saturdays the government
turned into working days (*làm bù*). The maintained source is the `holidays` package's
Vietnam calendar (`holidays.VN(...).is_working_day`), never a hand list.

The KPI engine judges millions of records in SQL, so the calendar also lives in the table
`work_calendar(day, working, workday_no)` (migration `0017_kpis_766`, refreshed by
`fill_sql`/`refresh`): `workday_no` is the number of working days from the table's first day up
to and including `day` (a non-working day carries the number of the working day before it).
Then, set-based:

- N working days after a moment on local day t end at the end of the working day numbered
  `workday_no(t) + N` (`DEADLINE_SQL`);
- the working days strictly after a and up to b are `workday_no(b) - workday_no(a)`.

Public API: `is_working_day`, `add_working_days`, `working_days_between`, `deadline`,
`rows`, `FIRST_DAY`, `LAST_DAY`, `DEADLINE_SQL`, `refresh`. The Python functions and the table
agree day for day (tests/calendar).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import cache

import holidays

from ioc.calendar import tables as _tables  # noqa: F401  (puts the room's tables on ioc.db.metadata)
from ioc.localtime import LOCAL_TZ, LOCAL_TZ_NAME

# The span the table covers: dossiers from 2000 on, deadlines until 2060.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2060, 12, 31)

__all__ = [
    "DEADLINE_SQL",
    "FIRST_DAY",
    "LAST_DAY",
    "LOCAL_TZ",
    "add_working_days",
    "deadline",
    "deadline_sql",
    "is_working_day",
    "refresh",
    "rows",
    "working_days_between",
]


@cache
def _calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=year)


def is_working_day(day: date) -> bool:
    """Monday–Friday and not a public holiday or day off, or a Saturday/Sunday worked in
    exchange for a day off (`holidays`' Vietnam calendar)."""
    return bool(_calendar(day.year).is_working_day(day))


def add_working_days(day: date, n: int) -> date:
    """The n-th working day after `day` (n >= 0; n = 0 gives `day` itself if it is a working
    day, else the working day before it — the same rule as the table's `workday_no`)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        while not is_working_day(day):
            day -= timedelta(days=1)
        return day
    while n:
        day += timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def working_days_between(a: date, b: date) -> int:
    """Working days d with a < d <= b (negative when b < a)."""
    if b < a:
        return -working_days_between(b, a)
    return sum(1 for i in range(1, (b - a).days + 1) if is_working_day(a + timedelta(days=i)))


def deadline(moment: datetime, n: int) -> datetime:
    """The end of the n-th working day after `moment`'s local day (local midnight after it),
    as `DEADLINE_SQL` computes it: n working days to handle something received at `moment`."""
    local = moment.astimezone(LOCAL_TZ).date()
    last = add_working_days(local, n)
    return datetime.combine(last + timedelta(days=1), time(), tzinfo=LOCAL_TZ)


def rows(first: date = FIRST_DAY, last: date = LAST_DAY) -> Iterator[tuple[date, bool, int]]:
    """(day, working, workday_no) for every day of [first, last], as the table holds them."""
    number = 0
    day = first
    while day <= last:
        working = is_working_day(day)
        number += working
        yield day, working, number
        day += timedelta(days=1)


# The end (local midnight after it) of the working day numbered `workday_no(start) + n`, for a
# timestamptz `start` and a whole number of working days `n` (both SQL expressions). NULL when
# outside the table's span. The engine embeds it in its contribution expressions (one indexed
# probe each, evaluated only where a deadline is needed).
DEADLINE_SQL = f"""(SELECT (w.day + 1)::timestamp AT TIME ZONE '{LOCAL_TZ_NAME}'
    FROM work_calendar w
    WHERE w.working AND w.workday_no = (
        SELECT s.workday_no FROM work_calendar s
        WHERE s.day = ({{start}} AT TIME ZONE '{LOCAL_TZ_NAME}')::date) + ({{n}}))"""


def deadline_sql(start: str, n: str) -> str:
    """`DEADLINE_SQL` for the SQL expressions `start` (timestamptz) and `n` (integer)."""
    return DEADLINE_SQL.format(start=start, n=n)


async def refresh(connection: object) -> int:
    """Rewrite `work_calendar` from the installed `holidays` (after upgrading the package: a new
    year's decree on Tết days off). Takes an asyncpg connection; returns the days written. The
    KPI aggregates judged with the old calendar need `ioc kpis rebuild` afterwards."""
    data = list(rows())
    await connection.execute("TRUNCATE work_calendar")  # type: ignore[attr-defined]
    await connection.copy_records_to_table(  # type: ignore[attr-defined]
        "work_calendar", records=data, columns=["day", "working", "workday_no"]
    )
    return len(data)
