"""`ioc watch`'s screen in a terminal (Rich): a unit's KPIs by their Vietnamese names, values
in Vietnamese number format, coloured and marked by status, with a legend; its children's
counts of statuses and its open alerts."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ioc.alerts import format_value
from ioc.kpis import CATALOGUE
from ioc.live.client import KpiValue, ScreenState

WINDOW_TITLES = {
    "today": "Hôm nay",
    "7d": "7 ngày",
    "month": "Tháng",
    "quarter": "Quý",
    "year": "Năm",
}
# status → (mark, style, meaning): the mark keeps the status readable without colour.
STATUS = {
    "ok": ("✓", "green", "đạt mục tiêu"),
    "warn": ("~", "yellow", "gần ngưỡng (trong biên cảnh báo)"),
    "bad": ("✗", "bold red", "không đạt mục tiêu"),
    "none": (" ", "dim", "không có mục tiêu hoặc dữ liệu"),
}


def kpi_cell(kpi_id: str, kpi: KpiValue | None) -> Text:
    """One value: `88,9% ✓` in its status's colour; `–` with no data."""
    if kpi is None or kpi["value"] is None:
        return Text("–", style="dim")
    mark, style, _ = STATUS.get(kpi["status"], STATUS["none"])
    return Text(f"{format_value(kpi_id, kpi['value'])} {mark}".rstrip(), style=style)


def legend() -> Text:
    """What the colours and marks mean."""
    text = Text("Chú giải: ")
    for status in ("ok", "warn", "bad"):
        mark, style, meaning = STATUS[status]
        text.append(f"{mark} {meaning}", style=style)
        text.append("   ")
    text.append("– không có dữ liệu", style="dim")
    return text


def screen(state: ScreenState, windows: list[str]) -> RenderableType:
    """The whole screen for the current state."""
    head = Text(f"Đơn vị {state.unit}", style="bold")
    head.append(f"   cập nhật {state.as_of or '–'}   seq {state.seq}", style="dim")
    table = Table(show_edge=False, header_style="bold")
    table.add_column("Chỉ số", no_wrap=False, max_width=60)
    for window in windows:
        table.add_column(WINDOW_TITLES.get(window, window), justify="right")
    ids = {k for (u, _, k) in state.kpis if u == state.unit}
    order = {kid: i for i, kid in enumerate(CATALOGUE)}
    for kpi_id in sorted(ids, key=lambda k: (order.get(k, len(order)), k)):
        known = CATALOGUE.get(kpi_id)
        name = known.name_vi if known else kpi_id
        table.add_row(
            name, *(kpi_cell(kpi_id, state.kpis.get((state.unit, w, kpi_id))) for w in windows)
        )
    parts: list[RenderableType] = [head, table, legend()]
    if state.names:
        window = windows[0]
        kids = Table(
            title=f"Đơn vị trực thuộc ({WINDOW_TITLES.get(window, window)})",
            show_edge=False,
            header_style="bold",
        )
        kids.add_column("Mã")
        kids.add_column("Tên")
        for status in ("bad", "warn", "ok"):
            mark, style, _ = STATUS[status]
            kids.add_column(Text(mark, style=style), justify="right")
        for child in sorted(state.names):
            statuses = [
                v["status"] for (u, w, _), v in state.kpis.items() if u == child and w == window
            ]
            kids.add_row(
                child,
                state.names[child],
                *(str(statuses.count(s)) for s in ("bad", "warn", "ok")),
            )
        parts.append(kids)
    alerts = Text(f"Cảnh báo đang mở: {len(state.alerts)}", style="bold")
    for alert in list(state.alerts.values())[:10]:
        kpi_id = str(alert.get("kpi", ""))
        known = CATALOGUE.get(kpi_id)
        style = "bold red" if alert.get("severity") == "critical" else "yellow"
        alerts.append(
            f"\n  [{alert.get('severity', '?')}] {alert.get('rule_name', alert.get('rule', '?'))}"
            f" — {alert.get('unit')} {known.name_vi if known else kpi_id} = "
            f"{format_value(kpi_id, alert.get('value'), missing='–')}",
            style=style,
        )
    parts.append(alerts)
    return Group(*parts)
