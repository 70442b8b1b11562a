"""collectors: reports of agencies (báo cáo), the fourth feed, and their status history

Revision ID: 0021_agency_reports
Revises: 0017_kpis_766
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0021_agency_reports"
down_revision: str | Sequence[str] | None = "0017_kpis_766"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # As `reports`: no foreign key to units (the pipeline resolves the unit itself, 0008),
    # history without a foreign key to its record (0009).
    run_script("""
    CREATE TABLE agency_reports (
        id bigint GENERATED ALWAYS AS IDENTITY,
        source text NOT NULL,
        source_id text NOT NULL,
        unit_code text NOT NULL,
        unit_ref text NOT NULL,
        regime text,
        title text,
        period text,
        frequency text,
        receiver text,
        requested_at timestamptz NOT NULL,
        due_at timestamptz NOT NULL,
        status text NOT NULL,
        filed_at timestamptz,
        channel text,
        source_updated_at timestamptz NOT NULL,
        raw jsonb NOT NULL,
        change_seq bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT agency_reports_pkey PRIMARY KEY (id),
        CONSTRAINT uq_agency_reports_source_id UNIQUE (source, source_id),
        CONSTRAINT agency_reports_status_check
            CHECK (status IN ('requested', 'filed', 'accepted', 'cancelled')),
        CONSTRAINT agency_reports_channel_check CHECK (channel IN ('online', 'paper'))
    );
    CREATE INDEX ix_agency_reports_change_seq ON agency_reports (change_seq);
    CREATE INDEX ix_agency_reports_unfiled_due ON agency_reports (due_at)
        WHERE filed_at IS NULL AND status <> 'cancelled';
    CREATE TABLE agency_report_history (
        agency_report_id bigint NOT NULL,
        status text NOT NULL,
        at timestamptz NOT NULL,
        CONSTRAINT pk_agency_report_history PRIMARY KEY (agency_report_id, at, status)
    );
    """)


def downgrade() -> None:
    run_script("""
    DELETE FROM dead_letters WHERE feed = 'agency_reports';
    DELETE FROM source_cursors WHERE feed = 'agency_reports';
    DROP TABLE agency_report_history;
    DROP TABLE agency_reports;
    """)
