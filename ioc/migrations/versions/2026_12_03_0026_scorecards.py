"""scorecards: values entered for the indicators ioc cannot compute, closed periods' scores

Revision ID: 0026_scorecards
Revises: 0025_console_audit
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0026_scorecards"
down_revision: str | Sequence[str] | None = "0025_console_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE indicator_values (
        id bigint GENERATED ALWAYS AS IDENTITY,
        indicator text NOT NULL,
        unit_code text NOT NULL,
        period text NOT NULL,
        value double precision NOT NULL,
        note text,
        source text NOT NULL,
        entered_by text NOT NULL,
        entered_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT indicator_values_pkey PRIMARY KEY (id),
        CONSTRAINT indicator_values_value_check CHECK (value = value AND value >= 0)
    );
    CREATE INDEX ix_indicator_values_lookup
        ON indicator_values (unit_code, indicator, period, id);
    CREATE TABLE scorecards_closed (
        id bigint GENERATED ALWAYS AS IDENTITY,
        scorecard text NOT NULL,
        unit_code text NOT NULL,
        period text NOT NULL,
        version integer NOT NULL,
        total double precision NOT NULL,
        body jsonb NOT NULL,
        closed_at timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL,
        CONSTRAINT scorecards_closed_pkey PRIMARY KEY (id),
        CONSTRAINT uq_scorecards_closed UNIQUE (scorecard, unit_code, period, version)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE scorecards_closed;
    DROP TABLE indicator_values;
    """)
