"""What a screen is sent first (and after any gap): KPIs of the unit and its direct children
for each subscribed window, and the unit's open alerts — read from the KPI and alert rooms.

On an instance that mirrors an upstream `ioc` (federation, docs/feeds.md), the upstream's
values overlay the local ones where the upstream has sent a value: "upstream wins when
present", per (unit, window, kpi), each such value marked `"source": "upstream"`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ioc.alerts import list_open_alerts
from ioc.federation import overlay_upstream
from ioc.kpis import snapshot
from ioc.settings import Settings


async def build_snapshot(
    session: AsyncSession, unit: str, windows: list[str], *, mirror: bool = False
) -> dict[str, Any]:
    """The snapshot body (without `seq`, which depends on when a screen takes it); with
    `mirror`, the upstream's stored KPI values replace the local ones they cover."""
    snaps = [await snapshot(session, unit, window, children=True) for window in windows]
    bodies = await overlay_upstream(session, snaps) if mirror else None
    if bodies is None:
        bodies = [snap.model_dump(mode="json") for snap in snaps]
    kpis = {window: body.get("kpis", []) for window, body in zip(windows, bodies, strict=True)}
    children = {
        window: body.get("children", []) for window, body in zip(windows, bodies, strict=True)
    }
    as_of = next((body["as_of"] for body in bodies if body.get("as_of")), None)
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


def snapshot_builder(
    settings: Settings,
) -> Callable[[AsyncSession, str, list[str]], Awaitable[dict[str, Any]]]:
    """The hub's snapshot builder under `IOC_FEDERATION_KPIS` (upstream: overlay; local: not)."""
    return partial(build_snapshot, mirror=settings.federation_kpis == "upstream")
