"""kpis: kpi_current.kpis stored as JSON text

Revision ID: 0014_kpis_current_text
Revises: 0012_kpis_current_rows
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from ioc.db.script import run_script

revision: str = "0014_kpis_current_text"
down_revision: str | Sequence[str] | None = "0012_kpis_current_rows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nothing queries inside a row's values in SQL (every reader parses the whole row), and a
    # round rewrites ~600 rows while its events wait: storing the JSON as text spares
    # PostgreSQL parsing ~600 KB into jsonb each time.
    run_script("ALTER TABLE kpi_current ALTER COLUMN kpis TYPE text USING kpis::text;")


def downgrade() -> None:
    run_script("ALTER TABLE kpi_current ALTER COLUMN kpis TYPE jsonb USING kpis::jsonb;")
