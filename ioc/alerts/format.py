"""Vietnamese wording and number formats for alert messages (docs/api.md §6: emails in Vietnamese).

Numbers follow Vietnamese usage: decimal comma, dot for thousands (`91,03%`, `1.234`).
Times are shown in Asia/Ho_Chi_Minh, the zone of every screen and calendar window.
"""

from __future__ import annotations

from datetime import datetime

from ioc.kpis import CATALOGUE
from ioc.localtime import LOCAL_TZ

WINDOW_NAMES: dict[str, str] = {
    "today": "hôm nay",
    "7d": "7 ngày qua",
    "month": "tháng này",
    "quarter": "quý này",
    "year": "năm nay",
}

SEVERITY_NAMES: dict[str, str] = {
    "info": "Thông tin",
    "warning": "Cảnh báo",
    "critical": "Nghiêm trọng",
}

OP_WORDS: dict[str, str] = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


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


def format_time(moment: datetime | str | None) -> str:
    """`HH:MM dd/mm/yyyy` in Vietnam time."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def console_url(public_url: str, alert_id: int) -> str:
    """The web console's page of one alert (history, deliveries, acknowledge): the link an
    alert e-mail and webhook carry (docs/console.md)."""
    return f"{public_url.rstrip('/')}/console/alerts/{alert_id}"
