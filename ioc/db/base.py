"""The one `MetaData` every room's tables are defined on, and its naming convention.

The migrations are SQL that mostly leaves constraints unnamed, so PostgreSQL names them
(`<table>_pkey`, `<table>_<columns>_key`, `<table>_<column>_fkey`, `<table>_<column>_check`).
The convention reproduces those names, so a table written here carries the names the
database already has and a constraint added later gets the same name whether it is created
from these tables or by SQL. Names a migration chose itself (`pk_<table>` for composite
keys, `uq_…`, `ix_…`, `ck_…`) are spelled out in the table; every index is named.
A check constraint is named by its column (`name="status"` → `dossiers_status_check`);
`tests/foundation/test_schema_drift.py` holds every name against a migrated database.
"""

from typing import Any

from sqlalchemy import DateTime, MetaData, text
from sqlalchemy.types import UserDefinedType

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Shared spellings for the tables: every time column is `timestamptz`; `now()` defaults.
TIMESTAMPTZ = DateTime(timezone=True)
NOW = text("now()")


class PgChar(UserDefinedType[str]):
    """PostgreSQL's one-byte `"char"` (a period grain: `d` day, `m` month)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return '"char"'
