"""The province's local time: one time zone, and the calendar windows KPIs are read over.

Asia/Ho_Chi_Minh is UTC+7 without daylight saving (since 1975), so a fixed offset is exact
for every record ioc handles and needs no tz database. SQL uses `LOCAL_TZ_NAME`
(`AT TIME ZONE`), Python `LOCAL_TZ`; both name the same zone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"
LOCAL_TZ = timezone(timedelta(hours=7), LOCAL_TZ_NAME)

# The years a record's time may fall in: outside them a time is a source's placeholder
# (`00010101000000`) and is refused at ingest; no series or period reaches past them either.
FIRST_YEAR = 1900
LAST_YEAR = 2199

# The windows a KPI is computed over: today, the last 7 days, and calendar periods to date.
WINDOWS: tuple[str, ...] = ("today", "7d", "month", "quarter", "year")


def local_date(moment: datetime) -> date:
    """The Asia/Ho_Chi_Minh calendar day of an aware datetime."""
    return moment.astimezone(LOCAL_TZ).date()
