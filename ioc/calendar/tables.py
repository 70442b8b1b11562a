"""The working-day calendar as a table, for deadlines judged in SQL (`ioc.calendar`)."""

from sqlalchemy import Boolean, Column, Date, Index, Integer, Table, text

from ioc.db import metadata

# One row per day from `FIRST_DAY` to `LAST_DAY`; `workday_no` counts the working days up to
# and including `day` (migration 0017_kpis_766, refreshed by `ioc.calendar.refresh`).
work_calendar = Table(
    "work_calendar",
    metadata,
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
    Column("workday_no", Integer, nullable=False),
    Index(
        "ix_work_calendar_workday_no", "workday_no", unique=True, postgresql_where=text("working")
    ),
)
