"""collectors: the dossier, procedure and report facts the 766 indicators need

Revision ID: 0016_dossier_766_facts
Revises: 0014_kpis_current_text
Create Date: 2026-12-03

Columns of the H2/H7 contract (PLAN.md): what real one-stop systems send about a dossier's
digitised files, payment, results, fees, reuse of data, identity checks and supplement
requests (docs/collectors.md says which source field feeds which column), a procedure's
legal duration, a report's citizen rating and refusal time. All have defaults or are
nullable, so existing rows stay valid; they are filled as sources re-send their records.
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0016_dossier_766_facts"
down_revision: str | Sequence[str] | None = "0014_kpis_current_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE dossiers
        ADD COLUMN paid_online_code smallint,
        ADD COLUMN result_files integer NOT NULL DEFAULT 0,
        ADD COLUMN e_result boolean NOT NULL DEFAULT false,
        ADD COLUMN fee_total numeric NOT NULL DEFAULT 0,
        ADD COLUMN data_reused boolean NOT NULL DEFAULT false,
        ADD COLUMN vneid_verified boolean NOT NULL DEFAULT false,
        ADD COLUMN national_db_used boolean NOT NULL DEFAULT false,
        ADD COLUMN refused_at timestamptz,
        ADD COLUMN closed_at timestamptz,
        ADD COLUMN accepted boolean NOT NULL DEFAULT true,
        ADD COLUMN supplements jsonb NOT NULL DEFAULT '[]',
        ADD COLUMN supplement_count integer NOT NULL DEFAULT 0,
        ADD COLUMN supplement_requested_at timestamptz,
        ADD COLUMN supplement_seconds bigint NOT NULL DEFAULT 0,
        ADD COLUMN due_moved_at timestamptz;
    UPDATE dossiers SET accepted = false WHERE status = 1;
    UPDATE dossiers d SET closed_at = coalesce(
        (SELECT min(h.at) FROM dossier_history h
         WHERE h.dossier_id = d.id AND h.status IN (3, 7, 8)),
        d.source_updated_at)
    WHERE d.status IN (3, 7, 8);
    ALTER TABLE procedures ADD COLUMN legal_days numeric;
    ALTER TABLE reports
        ADD COLUMN rating text CHECK (rating IN ('satisfied', 'dissatisfied')),
        ADD COLUMN rejected_at timestamptz;
    UPDATE reports SET rejected_at = source_updated_at WHERE status = 'rejected';
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE reports DROP COLUMN rejected_at, DROP COLUMN rating;
    ALTER TABLE procedures DROP COLUMN legal_days;
    ALTER TABLE dossiers
        DROP COLUMN due_moved_at, DROP COLUMN supplement_seconds,
        DROP COLUMN supplement_requested_at, DROP COLUMN supplement_count,
        DROP COLUMN supplements, DROP COLUMN accepted, DROP COLUMN closed_at,
        DROP COLUMN refused_at, DROP COLUMN national_db_used, DROP COLUMN vneid_verified,
        DROP COLUMN data_reused, DROP COLUMN fee_total, DROP COLUMN e_result,
        DROP COLUMN result_files, DROP COLUMN paid_online_code;
    """)
