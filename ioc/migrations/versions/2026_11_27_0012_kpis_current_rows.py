"""kpis: kpi_current holds one row per (unit, window) with every KPI's value in it

Revision ID: 0012_kpis_current_rows
Revises: 0011_kpis_memory
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0012_kpis_current_rows"
down_revision: str | Sequence[str] | None = "0011_kpis_memory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A province-wide batch changes ~4,200 (unit, window, kpi) values in ~600 (unit, window)
    # pairs; rewriting 4,200 rows took 35-55 ms of the 100 ms a round may take, ~600 rows
    # ~10 ms. `kpis` maps each KPI id to [value, numerator, denominator, target, status];
    # `as_of` is when the row's values were computed (every value of a row is exact then).
    run_script("""
    CREATE TABLE kpi_current_rows (
        unit_code text NOT NULL,
        time_window text NOT NULL,
        as_of timestamptz NOT NULL,
        kpis jsonb NOT NULL,
        CONSTRAINT pk_kpi_current_rows PRIMARY KEY (unit_code, time_window)
    ) WITH (fillfactor = 50);
    INSERT INTO kpi_current_rows (unit_code, time_window, as_of, kpis)
    SELECT unit_code, time_window, max(as_of),
           jsonb_object_agg(kpi_id, jsonb_build_array(value, numerator, denominator, target,
                                                      status))
    FROM kpi_current GROUP BY 1, 2;
    DROP TABLE kpi_current;
    ALTER TABLE kpi_current_rows RENAME TO kpi_current;
    ALTER TABLE kpi_current RENAME CONSTRAINT pk_kpi_current_rows TO pk_kpi_current;
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE kpi_current RENAME TO kpi_current_rows;
    ALTER TABLE kpi_current_rows RENAME CONSTRAINT pk_kpi_current TO pk_kpi_current_rows;
    CREATE TABLE kpi_current (
        unit_code text NOT NULL,
        time_window text NOT NULL,
        kpi_id text NOT NULL,
        value double precision,
        numerator double precision,
        denominator double precision,
        target double precision,
        status text NOT NULL,
        as_of timestamptz NOT NULL,
        CONSTRAINT pk_kpi_current PRIMARY KEY (unit_code, time_window, kpi_id)
    ) WITH (fillfactor = 50);
    INSERT INTO kpi_current
    SELECT r.unit_code, r.time_window, e.key, (e.value->>0)::float8, (e.value->>1)::float8,
           (e.value->>2)::float8, (e.value->>3)::float8, e.value->>4, r.as_of
    FROM kpi_current_rows r, jsonb_each(r.kpis) e;
    DROP TABLE kpi_current_rows;
    """)
