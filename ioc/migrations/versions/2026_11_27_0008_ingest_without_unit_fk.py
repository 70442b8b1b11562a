"""collectors: no foreign key from source records' unit_code to units (ingest speed)

Revision ID: 0008
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The ingest pipeline sets `unit_code` only from its own lookup in `units` (or `organs`,
    # whose own FK to units stays), in the same transaction, and rejects every record whose
    # unit it cannot resolve (ioc.collectors.store.place_units); nothing else writes these
    # tables. The FK re-checked every upserted row against `units` — one index probe and a
    # row lock (FOR KEY SHARE) per row, measured as a large share of the upsert. Units are
    # never deleted by `ioc` (reforms link units, they do not remove them).
    run_script("""
    ALTER TABLE dossiers DROP CONSTRAINT IF EXISTS dossiers_unit_code_fkey;
    ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_unit_code_fkey;
    ALTER TABLE procedures DROP CONSTRAINT IF EXISTS procedures_unit_code_fkey;
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE dossiers ADD CONSTRAINT dossiers_unit_code_fkey
        FOREIGN KEY (unit_code) REFERENCES units(code);
    ALTER TABLE reports ADD CONSTRAINT reports_unit_code_fkey
        FOREIGN KEY (unit_code) REFERENCES units(code);
    ALTER TABLE procedures ADD CONSTRAINT procedures_unit_code_fkey
        FOREIGN KEY (unit_code) REFERENCES units(code);
    """)
