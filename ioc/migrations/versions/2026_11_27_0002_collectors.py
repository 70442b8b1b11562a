"""collectors: dead-letter format, de-duplication of re-sent rejects

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `format` says which parser a dead-letter needs on replay (a dossier, a progress step,
    # a Góp ý report…); the payload hash lets a re-sent bad record bump `times_seen` on its
    # pending dead-letter instead of piling up copies (re-sending a batch changes nothing).
    run_script("""
    ALTER TABLE dead_letters
        ADD COLUMN format text NOT NULL DEFAULT 'unknown',
        ADD COLUMN payload_sha256 bytea,
        ADD COLUMN times_seen integer NOT NULL DEFAULT 1,
        ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
    CREATE UNIQUE INDEX uq_dead_letters_pending ON dead_letters (source, format, payload_sha256)
        WHERE replayed_at IS NULL;
    CREATE INDEX ix_dead_letters_pending ON dead_letters (id) WHERE replayed_at IS NULL;
    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX ix_dead_letters_pending;
    DROP INDEX uq_dead_letters_pending;
    ALTER TABLE dead_letters DROP COLUMN format, DROP COLUMN payload_sha256,
        DROP COLUMN times_seen, DROP COLUMN last_seen_at;
    """)
