"""kpis: medians from the response times themselves; the hour histogram table goes

Revision ID: 0018_kpis_one_median
Revises: 0016_dossier_766_facts
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0018_kpis_one_median"
down_revision: str | Sequence[str] | None = "0016_dossier_766_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every median is now selected among the sorted response times of `kpi_report_proj`
    # (index ix_kpi_report_proj_resp) by one routine (ioc/kpis/median.py); nothing reads the
    # rolled-up hour histogram or the per-report bucket any more.
    run_script("""
    DROP TABLE kpi_resp_hist;
    DROP INDEX ix_kpi_report_proj_bucket;
    ALTER TABLE kpi_report_proj DROP COLUMN resp_bucket;
    """)


def downgrade() -> None:
    # The histogram is refilled by `ioc kpis rebuild` (run it after downgrading).
    run_script("""
    ALTER TABLE kpi_report_proj ADD COLUMN resp_bucket integer;
    UPDATE kpi_report_proj SET resp_bucket = floor(resp_seconds / 3600)::integer;
    CREATE INDEX ix_kpi_report_proj_bucket ON kpi_report_proj (unit_code, resp_bucket, recv_day)
        INCLUDE (resp_seconds) WHERE resp_seconds IS NOT NULL;
    CREATE TABLE kpi_resp_hist (
        unit_code text NOT NULL,
        grain "char" NOT NULL CHECK (grain IN ('d', 'm')),
        period date NOT NULL,
        bucket integer NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_resp_hist PRIMARY KEY (unit_code, grain, period, bucket)
    );
    CREATE INDEX ix_kpi_resp_hist_zero ON kpi_resp_hist (unit_code) WHERE n = 0;
    """)
