"""collectors: drop the record indexes no query uses and the history rows' foreign keys

Revision ID: 0009_collectors
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0009_collectors"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every index is paid for on every ingested row. What reads `dossiers` and `reports`:
    # the KPI engine and the record-events projector tail `change_seq` (its index stays),
    # ingest probes (source, source_id) (unique, stays) and `id` (primary key, stays), the
    # personal-data routes look up source_id, the retention purge scans. Nothing filters
    # by (unit_code, received_at / finished_at / due_at) any more: the KPI engine keeps its
    # own per-unit aggregates and open/overdue set (`kpi_open`) and never scans records by
    # unit. Those five indexes only slowed ingest (measured: about half the upsert's time).
    # A query that needs one later adds it back in its own migration.
    #
    # History rows are written only by the ingest pipeline, from the ids the same statement
    # has just upserted (or, for progress steps, looked up in the same transaction), and
    # records are never deleted (a withdrawn dossier is a status change; the retention
    # purge only blanks personal columns). The foreign key re-checked every history row
    # against its record: one index probe and one row lock per row, ~20 % of the upsert.
    run_script("""
    DROP INDEX IF EXISTS ix_dossiers_unit_received;
    DROP INDEX IF EXISTS ix_dossiers_unit_finished;
    DROP INDEX IF EXISTS ix_dossiers_open_due;
    DROP INDEX IF EXISTS ix_reports_unit_received;
    DROP INDEX IF EXISTS ix_reports_open_due;
    ALTER TABLE dossier_history DROP CONSTRAINT IF EXISTS dossier_history_dossier_id_fkey;
    ALTER TABLE report_history DROP CONSTRAINT IF EXISTS report_history_report_id_fkey;
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE report_history ADD CONSTRAINT report_history_report_id_fkey
        FOREIGN KEY (report_id) REFERENCES reports(id) ON DELETE CASCADE;
    ALTER TABLE dossier_history ADD CONSTRAINT dossier_history_dossier_id_fkey
        FOREIGN KEY (dossier_id) REFERENCES dossiers(id) ON DELETE CASCADE;
    CREATE INDEX ix_reports_open_due ON reports (unit_code, due_at)
        WHERE resolved_at IS NULL AND status <> 'rejected';
    CREATE INDEX ix_reports_unit_received ON reports (unit_code, received_at);
    CREATE INDEX ix_dossiers_open_due ON dossiers (unit_code, due_at)
        WHERE finished_at IS NULL AND status NOT IN (3, 7, 8);
    CREATE INDEX ix_dossiers_unit_finished ON dossiers (unit_code, finished_at)
        WHERE finished_at IS NOT NULL;
    CREATE INDEX ix_dossiers_unit_received ON dossiers (unit_code, received_at);
    """)
