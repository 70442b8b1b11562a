"""kpis: the reports of agencies' contributions, counters and open set

Revision ID: 0022_kpis_agency_reports
Revises: 0021_agency_reports
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0022_kpis_agency_reports"
down_revision: str | Sequence[str] | None = "0021_agency_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# kpi_counts' new columns (ioc.kpis.contributions.COUNTERS, frozen here)
_COUNTERS = ("ar_filed", "ar_online", "ar_due", "ar_ontime")
_FEEDS_BEFORE = (
    "'dossiers', 'reports', 'documents', 'dossiers766', 'dossiers766_all', 'reports766', "
    "'reports766_all', 'catalogue'"
)


def upgrade() -> None:
    counters = ", ".join(f"ADD COLUMN {c} bigint NOT NULL DEFAULT 0" for c in _COUNTERS)
    run_script(f"""
    CREATE TABLE kpi_agency_report_proj (
        agency_report_id bigint NOT NULL,
        unit_code text NOT NULL,
        filed_day date,
        online boolean NOT NULL,
        due_day date,
        ontime boolean NOT NULL,
        open_due timestamptz,
        CONSTRAINT kpi_agency_report_proj_pkey PRIMARY KEY (agency_report_id)
    );
    ALTER TABLE kpi_counts {counters};
    ALTER TABLE kpi_journal ADD COLUMN agency_reports text;
    ALTER TABLE kpi_open DROP CONSTRAINT kpi_open_feed_check;
    ALTER TABLE kpi_open ADD CONSTRAINT kpi_open_feed_check
        CHECK (feed IN ({_FEEDS_BEFORE}, 'agency_reports'));
    -- three more KPIs per (unit, window): the engine's next round rebuilds and recomputes
    UPDATE kpi_state SET closure_hash = 'rebuild: 0022_kpis_agency_reports';
    """)


def downgrade() -> None:
    counters = ", ".join(f"DROP COLUMN {c}" for c in _COUNTERS)
    run_script(f"""
    DELETE FROM kpi_open WHERE feed = 'agency_reports';
    ALTER TABLE kpi_open DROP CONSTRAINT kpi_open_feed_check;
    ALTER TABLE kpi_open ADD CONSTRAINT kpi_open_feed_check CHECK (feed IN ({_FEEDS_BEFORE}));
    ALTER TABLE kpi_journal DROP COLUMN agency_reports;
    ALTER TABLE kpi_counts {counters};
    DROP TABLE kpi_agency_report_proj;
    UPDATE kpi_state SET closure_hash = 'rebuild: 0022_kpis_agency_reports down';
    """)
