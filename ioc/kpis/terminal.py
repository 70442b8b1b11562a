"""KPIs in a terminal (Rich), for `ioc watch` and `ioc kpis show`: Vietnamese names in the
catalogue's order, values in Vietnamese number format coloured and marked by status, the
children's counts of statuses, and a legend of the marks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ioc.kpis.catalogue import CATALOGUE
from ioc.kpis.display import format_value, kpi_name
from ioc.kpis.models import KpiSnapshot
from ioc.localtime import LOCAL_TZ

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
# (value, status) of one KPI in one window
Reading = tuple[float | None, str]


def kpi_cell(kpi_id: str, reading: Reading | None) -> Text:
    """One value: `88,9% ✓` in its status's colour; `–` with no data."""
    if reading is None or reading[0] is None:
        return Text("–", style="dim")
    value, status = reading
    mark, style, _ = STATUS.get(status, STATUS["none"])
    return Text(f"{format_value(kpi_id, value)} {mark}".rstrip(), style=style)


def legend() -> Text:
    """What the colours and marks mean."""
    text = Text("Chú giải: ")
    for status in ("ok", "warn", "bad"):
        mark, style, meaning = STATUS[status]
        text.append(f"{mark} {meaning}", style=style)
        text.append("   ")
    text.append("– không có dữ liệu", style="dim")
    return text


def kpi_table(readings: Mapping[tuple[str, str], Reading], windows: list[str]) -> Table:
    """One row per KPI (Vietnamese name, catalogue order), one column per window;
    `readings` is keyed by (kpi id, window)."""
    table = Table(show_edge=False, header_style="bold")
    table.add_column("Chỉ số", no_wrap=False, max_width=60)
    for window in windows:
        table.add_column(WINDOW_TITLES.get(window, window), justify="right")
    order = {kid: i for i, kid in enumerate(CATALOGUE)}
    ids = {kpi_id for kpi_id, _ in readings}
    for kpi_id in sorted(ids, key=lambda k: (order.get(k, len(order)), k)):
        table.add_row(
            kpi_name(kpi_id), *(kpi_cell(kpi_id, readings.get((kpi_id, w))) for w in windows)
        )
    return table


def children_table(children: Mapping[str, tuple[str, Sequence[str]]], window: str) -> Table:
    """Each child unit (code → (name, its KPIs' statuses)) with its counts of ✗, ~ and ✓."""
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
    for code in sorted(children):
        name, statuses = children[code]
        kids.add_row(code, name, *(str(statuses.count(s)) for s in ("bad", "warn", "ok")))
    return kids


def render_snapshot(snap: KpiSnapshot) -> RenderableType:
    """`ioc kpis show`: the unit's KPIs for one window, its children, the legend."""
    head = Text(f"Đơn vị {snap.unit} — {WINDOW_TITLES.get(snap.window, snap.window)}", style="bold")
    head.append(f"   lúc {snap.as_of.astimezone(LOCAL_TZ):%H:%M %d/%m/%Y}", style="dim")
    readings = {(k.id, snap.window): (k.value, k.status) for k in snap.kpis}
    parts: list[RenderableType] = [head, kpi_table(readings, [snap.window])]
    if snap.children:
        children = {c.unit: (c.name, [k.status for k in c.kpis]) for c in snap.children}
        parts.append(children_table(children, snap.window))
    parts.append(legend())
    return Group(*parts)
