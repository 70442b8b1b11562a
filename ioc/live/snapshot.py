"""What a screen is sent first (and after any gap): KPIs of the unit and its direct children
for each subscribed window, and the unit's open alerts — read from the KPI and alert rooms."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def build_snapshot(session: AsyncSession, unit: str, windows: list[str]) -> dict[str, Any]:
    """The snapshot body (without `seq`, which depends on when a screen takes it)."""
    # Imported here: the KPI and alert rooms import the event log, which this room also uses;
    # a late import keeps the live room loadable on its own (tests of the fan-out, benchmarks).
    from ioc.alerts import list_open_alerts
    from ioc.kpis import snapshot

    kpis: dict[str, Any] = {}
    children: dict[str, Any] = {}
    as_of: str | None = None
    for window in windows:
        snap = (await snapshot(session, unit, window, children=True)).model_dump(mode="json")
        kpis[window] = snap.get("kpis", [])
        children[window] = snap.get("children", [])
        as_of = as_of or snap.get("as_of")
    alerts = await list_open_alerts(session, unit)
    return {
        "type": "snapshot",
        "unit": unit,
        "windows": windows,
        "as_of": as_of,
        "kpis": kpis,
        "children": children,
        "alerts": alerts,
    }
