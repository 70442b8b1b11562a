"""kpis: Vietnam's working days as a table, for the Decision 766 deadlines

Revision ID: 0017_kpis_766
Revises: 0014_kpis_current_text
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import date, timedelta

import holidays

from ioc.db.script import run_script

revision: str = "0017_kpis_766"
down_revision: str | Sequence[str] | None = "0014_kpis_current_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST, LAST = date(2000, 1, 1), date(2060, 12, 31)


def _exceptions() -> tuple[list[str], list[str]]:
    """Weekdays that are not worked (holidays, days off) and weekend days that are (làm bù),
    from the `holidays` package's Vietnam calendar (as `ioc.calendar.is_working_day`)."""
    off, worked = [], []
    calendar = holidays.country_holidays("VN", years=range(FIRST.year, LAST.year + 1))
    day = FIRST
    while day <= LAST:
        working = bool(calendar.is_working_day(day))
        if day.weekday() < 5 and not working:
            off.append(day.isoformat())
        elif day.weekday() >= 5 and working:
            worked.append(day.isoformat())
        day += timedelta(days=1)
    return off, worked


def upgrade() -> None:
    # `workday_no`: working days from 2000-01-01 up to and including `day` (a day off carries
    # the number of the working day before it). "N working days after t" is then the working
    # day numbered workday_no(t) + N: one probe of the partial index (ioc.calendar).
    off, worked = _exceptions()
    run_script(f"""
    CREATE TABLE work_calendar (
        day date PRIMARY KEY,
        working boolean NOT NULL,
        workday_no integer NOT NULL
    );
    INSERT INTO work_calendar (day, working, workday_no)
    SELECT day, working, sum(working::int) OVER (ORDER BY day)
    FROM (
        SELECT g::date AS day,
               CASE WHEN g::date = ANY('{{{",".join(off)}}}'::date[]) THEN false
                    WHEN g::date = ANY('{{{",".join(worked)}}}'::date[]) THEN true
                    ELSE extract(isodow FROM g) < 6 END AS working
        FROM generate_series('{FIRST.isoformat()}'::date, '{LAST.isoformat()}'::date,
                             interval '1 day') AS g
    ) d;
    CREATE UNIQUE INDEX ix_work_calendar_workday_no ON work_calendar (workday_no) WHERE working;
    ANALYZE work_calendar;
    CREATE INDEX ix_procedures_code ON procedures (code);
    CREATE INDEX ix_dossiers_no_due_procedure ON dossiers (procedure_code) WHERE due_at IS NULL;
    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX ix_dossiers_no_due_procedure;
    DROP INDEX ix_procedures_code;
    DROP TABLE work_calendar;
    """)
