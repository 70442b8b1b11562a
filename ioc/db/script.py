"""Run a multi-statement SQL script in a migration (asyncpg prepares one statement at a time)."""

from __future__ import annotations

import re

from alembic import op

_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)


def run_script(sql: str) -> None:
    """Execute each `;`-terminated statement of `sql` in order (no `;` inside literals)."""
    for statement in _STATEMENT_END.split(sql):
        if statement.strip():
            op.execute(statement)
