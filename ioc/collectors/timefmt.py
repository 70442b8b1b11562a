"""Strict parsing of the time and date formats the sources use.

Source local times carry no offset; docs/api.md §0 says they are Asia/Ho_Chi_Minh (UTC+7, no
daylight saving), so a fixed offset is exact and needs no tz database.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from ioc.localtime import FIRST_YEAR, LAST_YEAR, LOCAL_TZ

_YMD = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")


class BadValue(ValueError):
    """A value that cannot be read; the message is the precise reason for a dead-letter."""


# Year 1 or 9999 with an offset cannot even be converted to UTC (OverflowError): times
# outside FIRST_YEAR–LAST_YEAR are refused here, with the record's reason.


class OutOfRange(BadValue):
    """A well-formed time outside FIRST_YEAR–LAST_YEAR."""


def _in_range(field: str, value: object, moment: datetime) -> datetime:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise OutOfRange(
            f"{field}: {value!r} is outside the years {FIRST_YEAR}–{LAST_YEAR} "
            "(a placeholder, not a time)"
        )
    return moment


def compact_local(field: str, value: object) -> datetime:
    """`yyyyMMddHHmmss` in UTC+7 → aware datetime (DVCQG dossier fields)."""
    text = value if isinstance(value, str) else (str(value) if isinstance(value, int) else "")
    if len(text) != 14 or not text.isdigit() or not text.isascii():
        raise BadValue(f"{field}: {value!r} is not a yyyyMMddHHmmss time")
    # fromisoformat of the basic ISO form (C code, 2x faster than six int() calls and the
    # constructor; this runs for every time of every record). It checks the calendar; the
    # hour is checked here because newer Pythons read 24:00 as the next midnight.
    if text[8:10] > "23":
        raise BadValue(f"{field}: {value!r} is not a valid calendar time")
    try:
        moment = datetime.fromisoformat(f"{text[0:8]}T{text[8:14]}+07:00")
    except ValueError:
        raise BadValue(f"{field}: {value!r} is not a valid calendar time") from None
    return _in_range(field, value, moment)


def iso(field: str, value: object) -> datetime:
    """ISO 8601 → aware datetime; a time without offset is read as UTC+7 (docs/api.md §0)."""
    if not isinstance(value, str):
        raise BadValue(f"{field}: {value!r} is not an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadValue(f"{field}: {value!r} is not an ISO 8601 time") from None
    return _in_range(field, value, parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ))


def slash_date(field: str, value: str) -> date:
    """`yyyy/MM/dd` or `dd/MM/yyyy` (both seen in edXML; the 4-digit part decides)."""
    text = value.strip()
    try:
        if m := _YMD.match(text):
            day = date(int(m[1]), int(m[2]), int(m[3]))
        elif m := _DMY.match(text):
            day = date(int(m[3]), int(m[2]), int(m[1]))
        else:
            raise BadValue(f"{field}: {value!r} is neither yyyy/MM/dd nor dd/MM/yyyy")
    except ValueError as exc:
        if isinstance(exc, BadValue):
            raise
        raise BadValue(f"{field}: {value!r} is not a valid calendar date") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise OutOfRange(
            f"{field}: {value!r} is outside the years {FIRST_YEAR}–{LAST_YEAR} "
            "(a placeholder, not a date)"
        )
    return day


def slash_time(field: str, value: str) -> datetime:
    """`yyyy/MM/dd HH:mm[:ss]` or `dd/MM/yyyy HH:mm[:ss]` in UTC+7 → aware datetime."""
    text = value.strip()
    day_part, _, time_part = text.partition(" ")
    day = slash_date(field, day_part)
    clock = time_part.strip() or "00:00:00"
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            t = datetime.strptime(clock, fmt).time()
            return datetime.combine(day, t, tzinfo=LOCAL_TZ)
        except ValueError:
            continue
    raise BadValue(f"{field}: {value!r} has no valid HH:mm[:ss] time")


def any_local(field: str, value: object) -> datetime:
    """A time in any of the shapes one-stop systems write inside a dossier's lists:
    `yyyyMMddHHmmss` (the sync's own format), ISO 8601 (what a .NET `DateTime` serialises to,
    `2026-03-16T09:15:00`; without an offset it is UTC+7) or `dd/MM/yyyy HH:mm[:ss]` /
    `yyyy/MM/dd HH:mm[:ss]` (the date order decided by the 4-digit part)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadValue(f"{field}: {value!r} is not a time")
    text = value.strip()
    if text.isdigit():
        return compact_local(field, text)
    if "/" in text:
        try:
            return slash_time(field, text.replace("T", " "))
        except OutOfRange:
            raise
        except BadValue:
            raise BadValue(f"{field}: {value!r} is not a valid dd/MM/yyyy HH:mm time") from None
    try:
        return iso(field, text)
    except OutOfRange:
        raise
    except BadValue:
        raise BadValue(
            f"{field}: {value!r} is neither yyyyMMddHHmmss, ISO 8601 nor dd/MM/yyyy HH:mm"
        ) from None
