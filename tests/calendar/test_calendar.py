"""Working days: weekends, Tết 2026 (16–20 Feb off), a worked Saturday, and the table the KPI
engine reads equal to the Python functions day for day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from ioc.calendar import (
    LOCAL_TZ,
    add_working_days,
    deadline,
    deadline_sql,
    is_working_day,
    rows,
    working_days_between,
)
from ioc.db import Database


def test_weekends_and_tet_2026() -> None:
    assert not is_working_day(date(2026, 2, 14))  # Saturday
    assert not is_working_day(date(2026, 2, 15))  # Sunday
    for d in range(16, 21):  # Tết: Mon 16 – Fri 20 Feb 2026
        assert not is_working_day(date(2026, 2, d))
    assert is_working_day(date(2026, 2, 13))  # Friday before
    assert is_working_day(date(2026, 2, 23))  # Monday after
    # Friday 13 Feb + 1 working day = Monday 23 Feb (weekend, five days of Tết, weekend)
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 23)
    # 15 working days from Thursday 12 Feb: 13 (1), 23–27 (5), 2–6 Mar (5), 9–12 Mar (4)
    assert add_working_days(date(2026, 2, 12), 15) == date(2026, 3, 12)
    assert working_days_between(date(2026, 2, 12), date(2026, 3, 12)) == 15
    assert working_days_between(date(2026, 3, 12), date(2026, 2, 12)) == -15
    assert working_days_between(date(2026, 2, 13), date(2026, 2, 22)) == 0


def test_worked_saturday_and_substitute_day_off() -> None:
    # 2026: Saturday 22 Aug worked in exchange for Monday 31 Aug off (then 1–2 Sep).
    assert is_working_day(date(2026, 8, 22))
    assert not is_working_day(date(2026, 8, 31))
    assert add_working_days(date(2026, 8, 21), 1) == date(2026, 8, 22)
    assert add_working_days(date(2026, 8, 28), 1) == date(2026, 9, 3)


def test_zero_days_and_deadline() -> None:
    # A non-working day's number is the working day's before it.
    assert add_working_days(date(2026, 2, 18), 0) == date(2026, 2, 13)
    assert add_working_days(date(2026, 2, 13), 0) == date(2026, 2, 13)
    # Received Friday 13 Feb 16:00, 2 working days: ends at the end of Tuesday 24 Feb.
    got = deadline(datetime(2026, 2, 13, 16, tzinfo=LOCAL_TZ), 2)
    assert got == datetime(2026, 2, 25, tzinfo=LOCAL_TZ)
    # Received on a holiday: counting starts after the working day before it.
    got = deadline(datetime(2026, 2, 17, 9, tzinfo=LOCAL_TZ), 1)
    assert got == datetime(2026, 2, 24, tzinfo=LOCAL_TZ)
    with pytest.raises(ValueError):
        add_working_days(date(2026, 1, 1), -1)


@pytest.fixture(scope="module")
async def cdb(databases: Any) -> Any:
    url = await databases.create()
    database = Database(url, pool_size=2)
    yield database
    await database.close()


async def test_table_equals_python(cdb: Database) -> None:
    conn = await cdb.connect_raw()
    try:
        table = [
            (r["day"], r["working"], r["workday_no"])
            for r in await conn.fetch("SELECT * FROM work_calendar ORDER BY day")
        ]
        assert table == list(rows())
        for moment, n in [
            (datetime(2026, 2, 13, 16, tzinfo=LOCAL_TZ), 2),
            (datetime(2026, 2, 17, 9, tzinfo=LOCAL_TZ), 1),
            (datetime(2026, 2, 12, 23, 59, tzinfo=LOCAL_TZ), 15),
            (datetime(2026, 8, 21, 8, tzinfo=LOCAL_TZ), 1),
            (datetime(2026, 12, 31, 17, tzinfo=LOCAL_TZ), 5),
        ]:
            got = await conn.fetchval(
                f"SELECT {deadline_sql('$1::timestamptz', '$2::int')}", moment, n
            )
            assert got == deadline(moment, n)
    finally:
        await conn.close()
