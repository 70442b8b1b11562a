"""The open-data rows: per unit and month, each counter KPI's value, numerator and
denominator. Built from the month aggregates only, so no record id, no personal field and no
free text can reach it; every unit is public reference data (GSO codes and names)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.kpis import CATALOGUE, monthly_values
from ioc.units import subtree

COLUMNS = (
    "unit_code",
    "unit_name",
    "unit_level",
    "month",
    "kpi",
    "kpi_name_vi",
    "kpi_name_en",
    "value",
    "numerator",
    "denominator",
)


@dataclass(frozen=True)
class OpenRow:
    unit_code: str
    unit_name: str
    unit_level: str
    month: str
    kpi: str
    kpi_name_vi: str
    kpi_name_en: str
    value: float | None
    numerator: float | None
    denominator: float | None


async def open_rows(session: AsyncSession, unit: str, first: date, last: date) -> list[OpenRow]:
    codes = await subtree(session, unit)
    names = {
        code: (name, level)
        for code, name, level in await session.execute(
            text("SELECT code, name, level FROM units WHERE code = ANY(:c)"), {"c": codes}
        )
    }
    rows: list[OpenRow] = []
    for code, month, values in await monthly_values(session, codes, first, last):
        name, level = names.get(code, (code, ""))
        for kpi_id, raw in values.items():
            kpi = CATALOGUE[kpi_id]
            rows.append(
                OpenRow(
                    code,
                    name,
                    level,
                    month.strftime("%Y-%m"),
                    kpi_id,
                    kpi.name_vi,
                    kpi.name_en,
                    raw.value,
                    raw.numerator,
                    raw.denominator,
                )
            )
    return rows


def as_csv(rows: list[OpenRow], licence: str) -> str:
    """RFC 4180 CSV (UTF-8 with BOM, so spreadsheets read Vietnamese); the first line is the
    licence as a `#` comment, as open-data portals print it above the table."""
    out = io.StringIO()
    out.write("\ufeff# " + licence.replace("\n", " ") + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [
                r.unit_code,
                r.unit_name,
                r.unit_level,
                r.month,
                r.kpi,
                r.kpi_name_vi,
                r.kpi_name_en,
                *("" if v is None else f"{v:.10g}" for v in (r.value, r.numerator, r.denominator)),
            ]
        )
    return out.getvalue()
