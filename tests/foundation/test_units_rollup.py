"""Units: the roll-up API other rooms use for set-based SQL and in-memory trees."""

from __future__ import annotations

from sqlalchemy import text

from ioc.db import Database
from ioc.units import (
    ancestor_rows_sql,
    ancestors,
    ancestors_join_sql,
    closure_pairs,
    tree_fingerprint,
    tree_fingerprint_sql,
)


async def test_ancestors_of_a_commune_nearest_first(db: Database) -> None:
    async with db.session() as s:
        assert await ancestors(s, "25195") == ["25195", "689", "70"]
        assert await ancestors(s, "70") == ["70"]


def test_the_fan_out_join_is_a_plain_join_on_the_closure() -> None:
    # the KPI fold's plan depends on this exact text: a join on the descendant index
    assert ancestors_join_sql("f.unit_code", "c") == (
        "JOIN unit_closure c ON c.descendant_code = f.unit_code"
    )


async def test_the_fan_out_repeats_a_row_per_ancestor(db: Database) -> None:
    async with db.session() as s:
        rows = await s.execute(
            text(
                "SELECT c.ancestor_code, f.n FROM (VALUES ('25195', 2), ('689', 5)) "
                f"AS f(unit_code, n) {ancestors_join_sql('f.unit_code', 'c')} ORDER BY 1, 2"
            )
        )
        assert [tuple(r) for r in rows] == [
            ("25195", 2),
            ("689", 2),
            ("689", 5),
            ("70", 2),
            ("70", 5),
        ]


async def test_ancestor_rows_carry_the_depth(db: Database) -> None:
    async with db.session() as s:
        rows = await s.execute(
            text(f"SELECT * FROM {ancestor_rows_sql(':u')} c ORDER BY 1, 3"),
            {"u": ["25195", "689"]},
        )
        assert [tuple(r) for r in rows] == [
            ("25195", "25195", 0),
            ("25195", "689", 1),
            ("25195", "70", 2),
            ("689", "689", 0),
            ("689", "70", 1),
        ]


async def test_closure_pairs_whole_tree_and_below_some_units(db: Database) -> None:
    async with db.session() as s:
        pairs = await closure_pairs(s)
        below = await closure_pairs(s, ["689"])
    # 123 units at depth 0, 111 communes + 11 districts one up, 111 communes two up
    assert len(pairs) == 123 + 111 + 11 + 111
    assert all(a == d for a, d in pairs[:123])  # nearest first: each unit itself
    assert ("70", "25195") in pairs and ("689", "25195") in pairs
    assert below[0] == ("689", "689")
    assert {a for a, _ in below} == {"689"}
    assert ("689", "25195") in below and ("689", "25198") in below


async def test_tree_fingerprint_is_stable_md5(db: Database) -> None:
    async with db.session() as s:
        first = await tree_fingerprint(s)
        again = (await s.execute(text(f"SELECT {tree_fingerprint_sql()}"))).scalar_one()
    assert len(first) == 32 and int(first, 16) >= 0
    assert first == again
