"""KPI values as people read them (Vietnamese usage): decimal comma, dot for thousands
(`91,03%`, `1.234`); ratios in percent, hours with their unit. The one formatter of KPI
values: e-mails, `ioc watch` and `ioc kpis show` all print through it."""

from __future__ import annotations

from ioc.kpis.catalogue import CATALOGUE


def vi_number(value: float, decimals: int = 2) -> str:
    """`1234.5` → `1.234,5`; trailing zeros of the fraction dropped (`95,00` → `95`)."""
    text = f"{value:,.{decimals}f}"  # 1,234.50
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    whole = whole.replace(",", ".")
    return f"{whole},{frac}" if frac else whole


def format_value(kpi: str, value: float | None, *, missing: str = "không có dữ liệu") -> str:
    """A KPI value as shown to people: ratios in percent (`88,9%`), hours with the unit,
    counts whole; the catalogue's `unit` decides (the 766 rates too)."""
    if value is None:
        return missing
    known = CATALOGUE.get(kpi)
    unit = known.unit if known else ("ratio" if kpi.endswith("_rate") else "count")
    if unit == "ratio":
        return vi_number(value * 100) + "%"
    if unit == "hours":
        return vi_number(value, 1) + " giờ"
    return vi_number(value, 2)


def kpi_name(kpi: str) -> str:
    """The KPI's Vietnamese name (its id when the catalogue does not know it)."""
    known = CATALOGUE.get(kpi)
    return known.name_vi if known else kpi
