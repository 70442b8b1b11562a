"""Where a unit is drawn on the map: its own `lat`/`lon` when its units file gave them, else
the position the `vietnamadminunits` dataset (MIT) gives its GSO code (`data/positions.csv`,
10,799 codes: provinces, districts and communes before the 2025 reform and the 2025 units;
`data/make_positions.py` rebuilds it from the dataset). A unit known to neither has none and
is listed beside the map."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.units import Unit, children, get_unit

POSITIONS_CSV = Path(__file__).resolve().parent / "data" / "positions.csv"
DATASET = "vietnamadminunits"


@dataclass(frozen=True, slots=True)
class Placed:
    code: str
    name: str
    level: str
    lat: float | None
    lon: float | None
    source: str | None  # "units" (the units file), "vietnamadminunits", or None


@cache
def dataset_positions() -> dict[str, tuple[float, float]]:
    """GSO code → (lat, lon) from the vendored dataset, read once."""
    with POSITIONS_CSV.open(encoding="utf-8") as f:
        return {row["code"]: (float(row["lat"]), float(row["lon"])) for row in csv.DictReader(f)}


async def _own_positions(session: AsyncSession, codes: list[str]) -> dict[str, tuple[float, float]]:
    rows = await session.execute(
        text(
            "SELECT code, lat, lon FROM units "
            "WHERE code = ANY(:codes) AND lat IS NOT NULL AND lon IS NOT NULL"
        ),
        {"codes": codes},
    )
    return {r.code: (float(r.lat), float(r.lon)) for r in rows}


def _place(unit: Unit, own: dict[str, tuple[float, float]]) -> Placed:
    if unit.code in own:
        lat, lon = own[unit.code]
        return Placed(unit.code, unit.name, unit.level, lat, lon, "units")
    found = dataset_positions().get(unit.code)
    if found is not None:
        return Placed(unit.code, unit.name, unit.level, found[0], found[1], DATASET)
    return Placed(unit.code, unit.name, unit.level, None, None, None)


async def placed_children(session: AsyncSession, code: str) -> tuple[Placed, list[Placed]]:
    """The unit and its direct children, each with its position or none."""
    unit = await get_unit(session, code)
    kids = await children(session, code)
    own = await _own_positions(session, [code, *(k.code for k in kids)])
    return _place(unit, own), [_place(k, own) for k in kids]
