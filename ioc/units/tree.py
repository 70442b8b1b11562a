"""Reading the unit tree: a unit, its children, and "every unit under X" — the one place
that knows `unit_closure` (`service.py` rebuilds it on every load).

`unit_closure` holds every (ancestor, descendant) pair reachable through parent edges and
default successor edges of reforms, the unit itself included (depth 0). So "every unit under
X" is one indexed lookup, offered three ways:

- `subtree_sql(x)` / `within_sql(x, y)`: SQL fragments for a query that filters by subtree,
  `x` and `y` being a bind parameter (`:unit`, `$4`) or a column (`s.unit_code`);
- `subtree(db, x)` (ordered list) and `subtree_set(db, x)`: the codes themselves;
- for set-based roll-ups, `ancestors_join_sql(x, alias)` (fan a row out to every unit it
  rolls up to), `ancestor_rows_sql(xs)` (with the depth), `closure_pairs(db)` (the whole
  tree in memory) and `tree_fingerprint_sql()`/`tree_fingerprint(db)` (has the tree changed?);
- `is_within(db, x, y)` and `scoped_unit(...)`: the checks routes make.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ioc.errors import OutOfScope, UnknownUnit

Executor = AsyncSession | AsyncConnection


@dataclass(frozen=True, slots=True)
class Unit:
    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: date | None
    valid_to: date | None
    successor_code: str | None


_UNIT_COLUMNS = "code, name, level, parent_code, valid_from, valid_to, successor_code"


def subtree_sql(ancestor: str) -> str:
    """A subquery of the codes of `ancestor` and every unit under it: `unit_code IN
    {subtree_sql(':unit')}`. `ancestor` is SQL: a bind parameter or a column, never a value."""
    return f"(SELECT descendant_code FROM unit_closure WHERE ancestor_code = {ancestor})"


def within_sql(ancestor: str, descendant: str) -> str:
    """A condition true when `descendant` is `ancestor` or under it (both SQL expressions:
    bind parameters or columns, never values)."""
    return (
        "EXISTS (SELECT 1 FROM unit_closure WHERE ancestor_code = "
        f"{ancestor} AND descendant_code = {descendant})"
    )


def ancestors_join_sql(descendant: str, alias: str) -> str:
    """A JOIN that repeats each row once per unit `descendant` rolls up to (itself included),
    that unit being `{alias}.ancestor_code`: `... JOIN ... {ancestors_join_sql('f.unit_code',
    'c')}` then `SELECT c.ancestor_code`. A plain join on the closure's descendant index, so a
    set-based fan-out keeps its plan. `descendant` is SQL (a column), never a value."""
    return f"JOIN unit_closure {alias} ON {alias}.descendant_code = {descendant}"


def ancestor_rows_sql(descendants: str) -> str:
    """A subquery of rows `(descendant_code, ancestor_code, depth)`: each unit of the array
    `descendants` (SQL: a bind parameter such as `:units`) with every unit it rolls up to,
    depth 0 being itself."""
    return (
        "(SELECT descendant_code, ancestor_code, depth FROM unit_closure "
        f"WHERE descendant_code = ANY({descendants}))"
    )


def tree_fingerprint_sql() -> str:
    """A scalar subquery: the md5 of every (ancestor, descendant) pair, which changes exactly
    when the tree does (a reload, a reform)."""
    return (
        "(SELECT md5(coalesce(string_agg(ancestor_code || '>' || descendant_code, ';' "
        "ORDER BY ancestor_code, descendant_code), '')) FROM unit_closure)"
    )


async def tree_fingerprint(db: Executor) -> str:
    """The tree's fingerprint now (see `tree_fingerprint_sql`)."""
    return str((await db.execute(text(f"SELECT {tree_fingerprint_sql()}"))).scalar_one())


async def closure_pairs(
    db: Executor, ancestors_of: list[str] | None = None
) -> list[tuple[str, str]]:
    """Every (ancestor, descendant) pair of the tree, itself included, nearest first (by
    depth); with `ancestors_of`, only the pairs whose ancestor is one of those units."""
    where = "" if ancestors_of is None else "WHERE ancestor_code = ANY(:u) "
    rows = await db.execute(
        text(
            "SELECT ancestor_code, descendant_code FROM unit_closure "
            f"{where}ORDER BY depth, ancestor_code, descendant_code"
        ),
        {"u": ancestors_of},
    )
    return [(str(a), str(d)) for a, d in rows]


async def get_unit(db: Executor, code: str) -> Unit:
    """The unit with this code, or `UnknownUnit`."""
    row = (
        await db.execute(
            text(f"SELECT {_UNIT_COLUMNS} FROM units WHERE code = :c"),
            {"c": code},
        )
    ).first()
    if row is None:
        raise UnknownUnit(f"unit {code!r} is not a known GSO code; load it with `ioc units load`")
    return Unit(*row)


async def subtree(db: Executor, code: str) -> list[str]:
    """Codes of `code` and every unit under it (through reforms too), nearest first: one
    indexed query."""
    return await _closure(db, code, "ancestor_code", "descendant_code")


async def subtree_set(db: Executor, code: str) -> frozenset[str]:
    """Codes of `code` and every unit under it, as a set (one indexed query)."""
    rows = await db.execute(text(f"SELECT code FROM {subtree_sql(':c')} AS t(code)"), {"c": code})
    return frozenset(r[0] for r in rows)


async def ancestors(db: Executor, code: str) -> list[str]:
    """Codes of `code` and every unit it rolls up to, nearest first."""
    return await _closure(db, code, "descendant_code", "ancestor_code")


async def _closure(db: Executor, code: str, given: str, wanted: str) -> list[str]:
    rows = await db.execute(
        text(f"SELECT {wanted} FROM unit_closure WHERE {given} = :c ORDER BY depth, {wanted}"),
        {"c": code},
    )
    return [r[0] for r in rows]


async def children(db: Executor, code: str) -> list[Unit]:
    """Current direct children of a unit."""
    rows = await db.execute(
        text(f"SELECT {_UNIT_COLUMNS} FROM units WHERE parent_code = :c ORDER BY code"),
        {"c": code},
    )
    return [Unit(*r) for r in rows]


async def is_within(db: Executor, ancestor: str, code: str) -> bool:
    """True when `code` is `ancestor` or rolls up to it."""
    found = await db.execute(text(f"SELECT {within_sql(':a', ':d')}"), {"a": ancestor, "d": code})
    return bool(found.scalar_one())


async def resolve_organ(db: Executor, organ_id: str) -> str | None:
    """The unit code an e-government organ id maps to, if known."""
    row = (
        await db.execute(text("SELECT unit_code FROM organs WHERE organ_id = :o"), {"o": organ_id})
    ).first()
    return None if row is None else str(row[0])


class Scoped(Protocol):
    """Who a request comes from, as far as unit scope goes (`ioc.auth.Principal`)."""

    @property
    def unit_code(self) -> str | None: ...


async def scoped_unit(db: Executor, principal: Scoped, code: str | None) -> str:
    """The unit a request is about, checked against the token's scope.

    `None` means the token's own unit. Unknown units answer 422, units outside the token's
    subtree 403 — the same answer whether or not the unit exists elsewhere would leak less,
    but operators need to know a typo from a refusal, and unit codes are public data.
    """
    if code is None:
        if principal.unit_code is None:
            raise OutOfScope("this token covers every unit: say which one with ?unit=CODE")
        return principal.unit_code
    await get_unit(db, code)
    if principal.unit_code is not None and not await is_within(db, principal.unit_code, code):
        raise OutOfScope(f"unit {code} is outside this token's unit {principal.unit_code}")
    return code
