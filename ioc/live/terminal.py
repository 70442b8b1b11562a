"""`ioc watch`'s screen in a terminal (Rich): a unit's KPIs and its children's counts of
statuses as the KPI room renders them (`ioc.kpis`' terminal tables, shared with
`ioc kpis show`), and the unit's open alerts."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from ioc.kpis import children_table, format_value, kpi_name, kpi_table, legend
from ioc.live.client import ScreenState


def screen(state: ScreenState, windows: list[str]) -> RenderableType:
    """The whole screen for the current state."""
    head = Text(f"Đơn vị {state.unit}", style="bold")
    head.append(f"   cập nhật {state.as_of or '–'}   seq {state.seq}", style="dim")
    readings = {
        (k, w): (v["value"], v["status"]) for (u, w, k), v in state.kpis.items() if u == state.unit
    }
    parts: list[RenderableType] = [head, kpi_table(readings, windows), legend()]
    if state.names:
        window = windows[0]
        children = {
            child: (
                name,
                [v["status"] for (u, w, _), v in state.kpis.items() if u == child and w == window],
            )
            for child, name in state.names.items()
        }
        parts.append(children_table(children, window))
    alerts = Text(f"Cảnh báo đang mở: {len(state.alerts)}", style="bold")
    for alert in list(state.alerts.values())[:10]:
        kpi_id = str(alert.get("kpi", ""))
        style = "bold red" if alert.get("severity") == "critical" else "yellow"
        alerts.append(
            f"\n  [{alert.get('severity', '?')}] {alert.get('rule_name', alert.get('rule', '?'))}"
            f" — {alert.get('unit')} {kpi_name(kpi_id)} = "
            f"{format_value(kpi_id, alert.get('value'), missing='–')}",
            style=style,
        )
    parts.append(alerts)
    return Group(*parts)
