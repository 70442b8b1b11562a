"""digest: the weekly digest's recipients and the digests sent (once per recipient and week)

Revision ID: 0027_digest
Revises: 0026_scorecards
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0027_digest"
down_revision: str | Sequence[str] | None = "0026_scorecards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE digest_recipients (
        id bigint GENERATED ALWAYS AS IDENTITY,
        unit_code text NOT NULL,
        email text NOT NULL,
        name text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT digest_recipients_pkey PRIMARY KEY (id),
        CONSTRAINT uq_digest_recipients UNIQUE (unit_code, email)
    );
    CREATE TABLE digest_sends (
        id bigint GENERATED ALWAYS AS IDENTITY,
        email text NOT NULL,
        unit_code text NOT NULL,
        week_start date NOT NULL,
        state text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        scorecard_total double precision,
        CONSTRAINT digest_sends_pkey PRIMARY KEY (id),
        CONSTRAINT digest_sends_state_check CHECK (state IN ('sending', 'sent', 'failed')),
        CONSTRAINT uq_digest_sends UNIQUE (email, unit_code, week_start)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE digest_sends;
    DROP TABLE digest_recipients;
    """)
