"""Units: all-or-nothing loads with errors naming the line, subtree lookups, reform roll-up."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from ioc.auth import Principal
from ioc.db import Database
from ioc.errors import OutOfScope, UnknownUnit
from ioc.units import (
    UnitsFileError,
    ancestors,
    is_within,
    load_organs_csv,
    load_units_csv,
    resolve_organ,
    scoped_unit,
    subtree,
    subtree_set,
    subtree_sql,
    within_sql,
)
from ioc.units.service import DEMO_FILES
from tests.conftest import DatabaseFactory

DATA = Path(DEMO_FILES[0]).parent


@pytest.fixture(scope="module")
async def reform_db(databases: DatabaseFactory) -> Database:
    """Bình Phước (2024) then Đồng Nai (2025) and the old→new mapping."""
    url = await databases.create()
    db = Database(url, pool_size=2)
    async with db.session() as s:
        await load_units_csv(s, DATA / "units-75-dongnai-2025.csv", valid_from=_d("2025-07-01"))
        await load_units_csv(s, DATA / "units-70-to-75-2025-mapping.csv")
    return db


def _d(value: str):  # type: ignore[no-untyped-def]
    from datetime import date

    return date.fromisoformat(value)


async def test_subtree_of_a_district_is_its_communes(db: Database) -> None:
    async with db.session() as s:
        codes = await subtree(s, "689")
    assert codes[0] == "689"
    assert len(codes) == 1 + 8
    assert "25195" in codes and "25198" in codes
    async with db.session() as s:
        assert len(await subtree(s, "70")) == 1 + 11 + 111


async def test_the_subtree_as_a_set_and_as_sql_fragments(db: Database) -> None:
    async with db.session() as s:
        below = await subtree_set(s, "689")
        assert below == frozenset(await subtree(s, "689"))
        # the fragments, with a bind parameter and with a column
        rows = await s.execute(
            text(f"SELECT code FROM units WHERE code IN {subtree_sql(':u')}"), {"u": "689"}
        )
        assert {r[0] for r in rows} == below
        under = await s.execute(
            text(f"SELECT u.code FROM units u WHERE {within_sql(':a', 'u.code')}"), {"a": "70"}
        )
        assert len({r[0] for r in under}) == 1 + 11 + 111
        assert await is_within(s, "70", "25195")
        assert not await is_within(s, "689", "70")


async def test_scoped_unit_checks_the_token_s_subtree(db: Database) -> None:
    district = Principal(uuid.uuid4(), "screen-689", "operator", "689")
    admin = Principal(uuid.uuid4(), "admin", "admin", None)
    async with db.session() as s:
        assert await scoped_unit(s, district, None) == "689"
        assert await scoped_unit(s, district, "25195") == "25195"
        assert await scoped_unit(s, admin, "70") == "70"
        with pytest.raises(OutOfScope):
            await scoped_unit(s, district, "70")
        with pytest.raises(OutOfScope):
            await scoped_unit(s, admin, None)
        with pytest.raises(UnknownUnit):
            await scoped_unit(s, admin, "99999")


async def test_subtree_is_one_indexed_query(db: Database) -> None:
    async with db.session() as s:
        # The demo table is tiny, so the planner may prefer a scan; ask whether an index
        # serves the lookup at all.
        await s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = (
            await s.execute(
                text("EXPLAIN SELECT descendant_code FROM unit_closure WHERE ancestor_code = '689'")
            )
        ).scalars()
        plan_text = "\n".join(plan)
    assert "pk_unit_closure" in plan_text or "Index" in plan_text


async def test_bad_rows_name_the_line_and_load_nothing(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,name,level,parent_code,lat,lon\n"
        "99001,Xã Mới,commune,689,,\n"
        "9,Xã Lạ,commune,689,,\n"
        "99002,,district,70,,\n",
        encoding="utf-8",
    )
    with pytest.raises(UnitsFileError) as caught:
        async with db.session() as s:
            await load_units_csv(s, bad)
    assert "line 3" in caught.value.detail
    lines = [e["line"] for e in caught.value.errors or []]
    assert lines == [3, 4]
    async with db.session() as s:
        assert (
            await s.execute(text("SELECT count(*) FROM units WHERE code = '99001'"))
        ).scalar() == 0


async def test_unknown_parent_is_refused(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "orphan.csv"
    bad.write_text(
        "code,name,level,parent_code,lat,lon\n99003,Xã Mồ Côi,commune,999,,\n", encoding="utf-8"
    )
    with pytest.raises(UnitsFileError, match="999"):
        async with db.session() as s:
            await load_units_csv(s, bad)


async def test_old_codes_roll_up_to_successors(reform_db: Database) -> None:
    async with reform_db.session() as s:
        # 25198 (Phường Tân Đồng, 2024) merged into 25195 (Phường Bình Phước, 2025) under 75.
        up = await ancestors(s, "25198")
        assert up[:1] == ["25198"]
        assert {"25195", "689", "70", "75"} <= set(up)
        assert await is_within(s, "75", "25198")
        assert await is_within(s, "689", "25198")
        assert not await is_within(s, "688", "25198")
        # The 2025 province covers itself, its 95 communes and the 71 old communes whose
        # codes disappeared into them (40 old codes were kept by the merged commune).
        assert len(await subtree(s, "75")) == 1 + 95 + 71
        row = (
            await s.execute(text("SELECT successor_code, valid_to FROM units WHERE code = '25198'"))
        ).one()
        assert row.successor_code == "25195"
        assert str(row.valid_to) == "2025-06-30"


async def test_mapping_before_units_is_refused(databases: DatabaseFactory) -> None:
    url = await databases.create(demo_units=False)
    db = Database(url, pool_size=1)
    try:
        with pytest.raises(UnitsFileError, match="load both unit files"):
            async with db.session() as s:
                await load_units_csv(s, DATA / "units-70-to-75-2025-mapping.csv")
    finally:
        await db.close()


async def test_organ_mapping_replaces_rows(db: Database, tmp_path: Path) -> None:
    organs = tmp_path / "organs.csv"
    organs.write_text("organ_id,unit_code,name\n000.99.17.H10,690,UBND thị xã Bình Long\n")
    async with db.session() as s:
        await load_organs_csv(s, organs)
        assert await resolve_organ(s, "000.99.17.H10") == "690"
    organs.write_text("organ_id,unit_code,name\n000.99.17.H10,691,UBND huyện Bù Gia Mập\n")
    async with db.session() as s:
        await load_organs_csv(s, organs)
        assert await resolve_organ(s, "000.99.17.H10") == "691"
        assert await resolve_organ(s, "000.21.17.H10") == "689"
