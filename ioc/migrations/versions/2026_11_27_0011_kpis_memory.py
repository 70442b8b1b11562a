"""kpis: the engine emits from memory and folds its journal afterwards

Revision ID: 0011_kpis_memory
Revises: 0004_kpis_resp_win
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0011_kpis_memory"
down_revision: str | Sequence[str] | None = "0004_kpis_resp_win"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The engine computes a round's values in memory and commits its events first; what it
    # derived from the records (their new contributions) is journaled in that same
    # transaction and folded into the aggregates by the next one. A crash in between leaves
    # the journal row, which is folded before anything else (docs/kpis.md).
    # `generation` tells the engine that targets or emitted values were changed by someone
    # else (a target set through the API, a rebuild), so it reloads them.
    # `kpi_resp_win` served the engine's medians; the engine now selects them in memory.
    # kpi_current is rewritten in place every round: room on each page keeps those updates
    # HOT (no index entry per update).
    run_script("""
    CREATE TABLE kpi_journal (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        lo bigint NOT NULL,
        hi bigint NOT NULL,
        dossiers text,
        reports text,
        documents text,
        procedures text,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE kpi_state ADD COLUMN generation bigint NOT NULL DEFAULT 0;
    DROP TABLE kpi_resp_win;
    ALTER TABLE kpi_state DROP COLUMN resp_win_day;
    ALTER TABLE kpi_current SET (fillfactor = 50);
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE kpi_current RESET (fillfactor);
    ALTER TABLE kpi_state ADD COLUMN resp_win_day date;
    CREATE TABLE kpi_resp_win (
        unit_code text NOT NULL,
        time_window text NOT NULL,
        bucket integer NOT NULL,
        n bigint NOT NULL,
        CONSTRAINT pk_kpi_resp_win PRIMARY KEY (unit_code, time_window, bucket)
    );
    ALTER TABLE kpi_state DROP COLUMN generation;
    DROP TABLE kpi_journal;
    """)
