"""`/api/v1/kpis` (docs/api.md §4) and per-unit target management. Thin: scope, call, shape."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request, Response

from ioc.api import SessionDep, get_ctx
from ioc.auth import Principal, authenticate, require
from ioc.federation import overlay_upstream
from ioc.kpis.catalogue import CATALOGUE, Kpi
from ioc.kpis.models import KpiSeries, KpiSnapshot, TargetIn, TargetOut
from ioc.kpis.reads import snapshot
from ioc.kpis.series import series
from ioc.kpis.targets import list_targets, set_target
from ioc.localtime import LOCAL_TZ, WINDOWS
from ioc.units import scoped_unit

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"], dependencies=[Depends(authenticate)])


@router.get(
    "",
    response_model=KpiSnapshot,
    summary="Every KPI of a unit for a window",
    description=(
        "Every KPI of a unit for a period (today, 7 days, month, quarter, year) with its value, "
        "target and status, optionally for each of its direct children too. Any reading role, for "
        "units within its token's unit."
    ),
)
async def read_kpis(
    request: Request,
    session: SessionDep,
    unit: str | None = Query(default=None, description="GSO code; default the token's unit"),
    window: str = Query(default="today", description=f"one of {', '.join(WINDOWS)}"),
    children: bool = Query(default=False, description="also each direct child unit"),
    principal: Principal = Depends(require("operator")),
) -> Response:
    code = await scoped_unit(session, principal, unit)
    found = await snapshot(session, code, window, children=children)
    if get_ctx(request).settings.federation_kpis == "upstream":
        # A district mirroring its province (docs/feeds.md): the same overlay as its screens'
        # snapshot, upstream values marked `"source": "upstream"`. One query on a province.
        overlaid = await overlay_upstream(session, [found])
        if overlaid is not None:
            body = json.dumps(overlaid[0], ensure_ascii=False)
            return Response(body, media_type="application/json")
    # Serialised once by the model itself (FastAPI would validate the model again first:
    # 156 values for a province with its children); the schema stays `response_model`.
    return Response(found.model_dump_json(), media_type="application/json")


@router.get(
    "/catalogue",
    summary="The KPI catalogue: ids, names, formulas, default targets",
    description=(
        "The list of KPIs ioc computes: their ids, Vietnamese names, formulas and default targets. "
        "Any reading role."
    ),
)
async def read_catalogue(
    principal: Principal = Depends(require("operator")),
) -> list[dict[str, object]]:
    return [_describe(k) for k in CATALOGUE.values()]


def _describe(k: Kpi) -> dict[str, object]:
    return {
        "id": k.id,
        "name_vi": k.name_vi,
        "name_en": k.name_en,
        "unit": k.unit,
        "feed": k.feed,
        "formula": k.formula,
        "direction": k.direction,
        "target": k.target,
        "windowed": k.windowed,
    }


@router.get(
    "/targets",
    response_model=list[TargetOut],
    summary="Targets in force at a unit",
    description=(
        "The target of each KPI at a unit, its own or inherited from the unit above or the default."
        " Any reading role, for units within its token's unit."
    ),
)
async def read_targets(
    session: SessionDep,
    unit: str | None = Query(default=None),
    principal: Principal = Depends(require("operator")),
) -> list[TargetOut]:
    code = await scoped_unit(session, principal, unit)
    return await list_targets(session, code)


@router.put(
    "/targets/{unit}/{kpi_id}",
    response_model=TargetOut,
    summary="Set (or with null, remove) a unit's own target for a KPI (admins)",
    description=(
        "Sets the target a unit must reach for one KPI (the units below inherit it), or removes it "
        "with `null`. Administrators only."
    ),
)
async def write_target(
    unit: str,
    kpi_id: str,
    body: TargetIn,
    session: SessionDep,
    principal: Principal = Depends(require("admin")),
) -> TargetOut:
    code = await scoped_unit(session, principal, unit)
    return await set_target(session, code, kpi_id, body.target, by=principal.name)


@router.get(
    "/{kpi_id}/series",
    response_model=KpiSeries,
    summary="A KPI per day or month",
    description=(
        "The values of one KPI for a unit over a period, one per day or month, for trend charts. "
        "Any reading role, for units within its token's unit."
    ),
)
async def read_series(
    kpi_id: str,
    session: SessionDep,
    unit: str | None = Query(default=None),
    from_: date | None = Query(default=None, alias="from", description="first local day"),
    to: date | None = Query(default=None, description="last local day (default today)"),
    step: str = Query(default="day", description="day or month"),
    principal: Principal = Depends(require("operator")),
) -> KpiSeries:
    code = await scoped_unit(session, principal, unit)
    end = to or datetime.now(LOCAL_TZ).date()
    start = from_ or end - timedelta(days=29)
    return await series(session, kpi_id, code, start, end, step=step)
