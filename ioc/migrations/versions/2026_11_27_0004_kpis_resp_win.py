"""kpis: the response-time histogram of the current windows (exact medians read ~50 rows)

Revision ID: 0004_kpis_resp_win
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0004_kpis_resp_win"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reports with a response per (unit, window, 1-hour bucket) for the windows of the local
    # day `kpi_state.resp_win_day`: the engine moves it by each round's facts and rebuilds
    # it from `kpi_resp_hist` on a new local day (or after a rebuild), so a median counts
    # through one contiguous key range per (unit, window) instead of every day and month
    # row of the window.
    run_script("""
    CREATE TABLE kpi_resp_win (
        unit_code text NOT NULL,
        time_window text NOT NULL,
        bucket integer NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_resp_win PRIMARY KEY (unit_code, time_window, bucket)
    );
    ALTER TABLE kpi_state ADD COLUMN resp_win_day date;
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE kpi_state DROP COLUMN resp_win_day;
    DROP TABLE kpi_resp_win;
    """)
