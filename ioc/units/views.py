"""Read-only unit tree for screens and districts, scoped to the token's unit."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from ioc.api import SessionDep
from ioc.auth import Principal, authenticate, require
from ioc.units.tree import children, get_unit, scoped_unit

router = APIRouter(prefix="/api/v1/units", tags=["units"], dependencies=[Depends(authenticate)])


class UnitOut(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    valid_from: date | None
    valid_to: date | None
    successor_code: str | None


class UnitWithChildren(UnitOut):
    children: list[UnitOut]


@router.get(
    "/{code}",
    response_model=UnitWithChildren,
    summary="A unit and its direct children",
    description=(
        "The name, level and parent of an administrative unit (province, district, commune) and the"
        " units directly under it. Any reading role, for units within its token's unit."
    ),
)
async def read_unit(
    code: str, session: SessionDep, principal: Principal = Depends(require("operator"))
) -> UnitWithChildren:
    await scoped_unit(session, principal, code)
    unit = await get_unit(session, code)
    kids = await children(session, code)
    return UnitWithChildren(
        **UnitOut.model_validate(unit, from_attributes=True).model_dump(),
        children=[UnitOut.model_validate(k, from_attributes=True) for k in kids],
    )
