"""kpis: Vietnam's working days as a table, for the Decision 766 deadlines

Revision ID: 0017_kpis_766
Revises: 0018_kpis_one_median
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import date, timedelta

import holidays

from ioc.db.script import run_script

revision: str = "0017_kpis_766"
down_revision: str | Sequence[str] | None = "0018_kpis_one_median"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST, LAST = date(2000, 1, 1), date(2060, 12, 31)
# kpi_counts' new columns (ioc.kpis.aggregates.COUNT_COLUMNS, frozen here)
_COUNTERS = (
    "i_online",
    "i_fee",
    "i_paid",
    "i_digit",
    "i_reuse",
    "i_popdb",
    "i_result",
    "i_eresult",
    "i_ended",
    "i_ontime",
    "ir_ended",
    "ir_ontime",
    "ir_satisfied",
)


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
    # The 766 counters, the records' 766 contributions, the open sets judged by the 766
    # deadlines (and "every open one" sets, at a fixed past moment, whose overdue count is
    # the number open), and the catalogue's listed services (docs/indicators-766.md).
    counters = ", ".join(f"ADD COLUMN {c} bigint NOT NULL DEFAULT 0" for c in _COUNTERS)
    run_script(f"""
    ALTER TABLE kpi_counts {counters};
    ALTER TABLE kpi_dossier_proj
        ADD COLUMN i_online boolean NOT NULL DEFAULT false,
        ADD COLUMN i_fee boolean NOT NULL DEFAULT false,
        ADD COLUMN i_paid boolean NOT NULL DEFAULT false,
        ADD COLUMN i_digit boolean NOT NULL DEFAULT false,
        ADD COLUMN i_reuse boolean NOT NULL DEFAULT false,
        ADD COLUMN i_popdb boolean NOT NULL DEFAULT false,
        ADD COLUMN i_result boolean NOT NULL DEFAULT false,
        ADD COLUMN i_eresult boolean NOT NULL DEFAULT false,
        ADD COLUMN end_day date,
        ADD COLUMN i_ontime boolean NOT NULL DEFAULT false,
        ADD COLUMN open766 boolean NOT NULL DEFAULT false,
        ADD COLUMN open766_due timestamptz;
    ALTER TABLE kpi_report_proj
        ADD COLUMN end_day date,
        ADD COLUMN ir_ontime boolean NOT NULL DEFAULT false,
        ADD COLUMN ir_satisfied boolean NOT NULL DEFAULT false,
        ADD COLUMN open766 boolean NOT NULL DEFAULT false,
        ADD COLUMN open766_due timestamptz;
    ALTER TABLE kpi_service ADD COLUMN listed boolean NOT NULL DEFAULT false;
    ALTER TABLE kpi_open DROP CONSTRAINT kpi_open_feed_check;
    ALTER TABLE kpi_open ADD CONSTRAINT kpi_open_feed_check CHECK (feed IN ('dossiers',
        'reports', 'documents', 'dossiers766', 'dossiers766_all', 'reports766',
        'reports766_all', 'catalogue'));
    -- the aggregates lack the new counters: the engine's next round rebuilds them (as after
    -- a change of the unit tree)
    UPDATE kpi_state SET closure_hash = 'rebuild: 0017_kpis_766';
    """)


def downgrade() -> None:
    counters = ", ".join(f"DROP COLUMN {c}" for c in _COUNTERS)
    run_script(f"""
    DELETE FROM kpi_open WHERE feed NOT IN ('dossiers', 'reports', 'documents');
    ALTER TABLE kpi_open DROP CONSTRAINT kpi_open_feed_check;
    ALTER TABLE kpi_open ADD CONSTRAINT kpi_open_feed_check
        CHECK (feed IN ('dossiers', 'reports', 'documents'));
    ALTER TABLE kpi_service DROP COLUMN listed;
    ALTER TABLE kpi_report_proj DROP COLUMN end_day, DROP COLUMN ir_ontime,
        DROP COLUMN ir_satisfied, DROP COLUMN open766, DROP COLUMN open766_due;
    ALTER TABLE kpi_dossier_proj DROP COLUMN i_online, DROP COLUMN i_fee, DROP COLUMN i_paid,
        DROP COLUMN i_digit, DROP COLUMN i_reuse, DROP COLUMN i_popdb, DROP COLUMN i_result,
        DROP COLUMN i_eresult, DROP COLUMN end_day, DROP COLUMN i_ontime, DROP COLUMN open766,
        DROP COLUMN open766_due;
    ALTER TABLE kpi_counts {counters};
    UPDATE kpi_state SET closure_hash = 'rebuild: 0017_kpis_766 down';
    """)
    run_script("""
    DROP INDEX ix_dossiers_no_due_procedure;
    DROP INDEX ix_procedures_code;
    DROP TABLE work_calendar;
    """)
