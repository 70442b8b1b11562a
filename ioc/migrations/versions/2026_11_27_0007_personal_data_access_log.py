"""personal data: the access log of every unmasked read (Decree 13/2023/NĐ-CP)

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Who read which citizen's data, when, why and through which route. The token is copied
    # (name, role, unit) rather than referenced, so the log outlives a deleted token.
    run_script("""
    CREATE TABLE personal_data_access_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        token_id uuid NOT NULL,
        token_name text NOT NULL,
        role text NOT NULL,
        token_unit text,
        record_kind text NOT NULL CHECK (record_kind IN ('dossier', 'report', 'dead_letter')),
        record_key text NOT NULL,
        unit_code text,
        fields text[] NOT NULL,
        reason text NOT NULL CHECK (length(reason) >= 5),
        route text NOT NULL
    );
    CREATE INDEX ix_personal_data_access_log_at ON personal_data_access_log (at);
    CREATE INDEX ix_personal_data_access_log_token ON personal_data_access_log (token_id, at);
    """)


def downgrade() -> None:
    run_script("DROP TABLE personal_data_access_log;")
