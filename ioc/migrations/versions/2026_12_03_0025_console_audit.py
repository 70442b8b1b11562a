"""console: who changed what through the web console, and when

Revision ID: 0025_console_audit
Revises: 0017_kpis_766
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0025_console_audit"
down_revision: str | Sequence[str] | None = "0022_kpis_agency_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE console_audit (
        id bigint GENERATED ALWAYS AS IDENTITY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        role text NOT NULL,
        action text NOT NULL,
        object text NOT NULL,
        detail jsonb NOT NULL DEFAULT '{}'::jsonb,
        CONSTRAINT pk_console_audit PRIMARY KEY (id)
    );
    CREATE INDEX ix_console_audit_action_at ON console_audit (action, at);
    """)


def downgrade() -> None:
    run_script("DROP TABLE console_audit;")
