"""`/api/v1/scorecards/766`, `/api/v1/indicators` and `/api/v1/indicator-values`
(docs/api.md §4.1). Thin: scope, call, shape."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ioc.api import SessionDep
from ioc.auth import Principal, authenticate, require
from ioc.scorecards.definition import DECISION_766
from ioc.scorecards.entered import value_history
from ioc.scorecards.models import IndicatorOut, IndicatorValueIn, IndicatorValueOut, Scorecard
from ioc.scorecards.service import enter_value, read_scorecard
from ioc.units import scoped_unit, subtree

router = APIRouter(tags=["scorecards"], dependencies=[Depends(authenticate)])


@router.get(
    "/api/v1/scorecards/766",
    response_model=Scorecard,
    response_model_by_alias=True,
    summary="A unit's Decision 766 scorecard for a period, its children ranked",
)
async def read_766(
    session: SessionDep,
    unit: str | None = Query(default=None, description="GSO code; default the token's unit"),
    period: str = Query(
        default="month", description="2026-11, 2026-Q4, 2026, or the current month|quarter|year"
    ),
    principal: Principal = Depends(require("operator")),
) -> Scorecard:
    """Each 766 indicator's value (computed from records, entered, or missing), its points,
    threshold and score; each group's subtotal; the total out of `max`; the unit's children
    ranked by total. A closed period's scorecard is stored once and does not move with later
    records (docs/scorecards.md)."""
    code = await scoped_unit(session, principal, unit)
    return await read_scorecard(session, code, period)


@router.get(
    "/api/v1/indicators",
    response_model=list[IndicatorOut],
    summary="Every indicator: the 766 scorecard's (computed or entered) and the indices "
    "entered from elsewhere (DTI, PAR Index, SIPAS, PCI/DDCI)",
)
async def read_indicators(
    principal: Principal = Depends(require("operator")),
) -> list[IndicatorOut]:
    """Every indicator a scorecard or a leader reads: how its value comes (`computed` from
    records or `entered`), for which period, on which scale, and for the 766 ones their group,
    points, threshold and scope."""
    scored = [
        IndicatorOut(
            id=i.id,
            name=i.name,
            name_en=i.name_en,
            source="computed" if i.kpi else "entered",
            kpi=i.kpi,
            period="month",
            scale="fraction",
            max=1.0,
            scorecard=DECISION_766.id,
            group=i.group,
            points=i.points,
            threshold=i.threshold,
            scope=i.scope,
        )
        for i in DECISION_766.indicators.values()
    ]
    others = [
        IndicatorOut(
            id=o.id,
            name=o.name,
            name_en=o.name_en,
            source="entered",
            kpi=None,
            period=o.period,
            scale=o.scale,
            max=o.max,
            scorecard=None,
            group=None,
            points=None,
            threshold=None,
            scope="all",
        )
        for o in DECISION_766.others
    ]
    return scored + others


@router.post(
    "/api/v1/indicator-values",
    response_model=IndicatorValueOut,
    status_code=201,
    summary="Enter a value ioc cannot compute (admin): kept as history, the newest counts",
)
async def post_indicator_value(
    body: IndicatorValueIn, session: SessionDep, principal: Principal = Depends(require("admin"))
) -> IndicatorValueOut:
    """A value for an indicator ioc does not compute (766 group 1, DTI, PAR Index, SIPAS,
    PCI/DDCI…), for a unit and period, with a note; who entered it is kept. A value for a
    closed period recomputes that unit's stored scorecards of the period."""
    await scoped_unit(session, principal, body.unit)
    return await enter_value(session, body, by=principal.name, source="api")


@router.get(
    "/api/v1/indicator-values",
    response_model=list[IndicatorValueOut],
    summary="Entered values of a unit's subtree, newest first (superseded ones included)",
)
async def list_indicator_values(
    session: SessionDep,
    unit: str | None = Query(default=None),
    indicator: str | None = Query(default=None),
    principal: Principal = Depends(require("operator")),
) -> list[IndicatorValueOut]:
    """The history of entered values for the unit's subtree, newest first, superseded entries
    included (the newest per indicator, unit and period is the one used)."""
    code = await scoped_unit(session, principal, unit)
    return await value_history(session, await subtree(session, code), indicator=indicator)
