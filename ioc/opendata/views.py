"""`GET /api/v1/open-data/kpis.csv` and `.json`. Public when `IOC_OPEN_DATA_PUBLIC` is true
(a province's open-data portal fetches them), otherwise any reading token, for its subtree."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials

from ioc.api import SessionDep, get_ctx
from ioc.auth import BEARER, Principal, authenticate, require_role
from ioc.errors import Invalid
from ioc.localtime import local_date
from ioc.opendata.service import OpenRow, as_csv, open_rows
from ioc.units import scoped_unit

router = APIRouter(prefix="/api/v1/open-data", tags=["open data"])


def _month(text: str, name: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise Invalid(f"`{name}` must be a month like 2026-11, not {text!r}") from None


async def open_data_reader(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Principal | None:
    """Nobody in particular when the export is public, else a reading token (as documented
    in the description: the default)."""
    if get_ctx(request).settings.open_data_public:
        return None
    principal = await authenticate(request)
    require_role(principal, "operator")
    return principal


open_data_reader.ioc_roles = ("operator",)  # type: ignore[attr-defined]
_PUBLIC_NOTE = (
    "With `IOC_OPEN_DATA_PUBLIC=true` no token is needed (the unit then defaults to "
    "`IOC_OPEN_DATA_UNIT`). Aggregates only: no record id, no personal data."
)


async def _rows(
    request: Request,
    session: SessionDep,
    principal: Principal | None,
    unit: str | None,
    start: str | None,
    end: str | None,
) -> tuple[str, list[OpenRow]]:
    settings = get_ctx(request).settings
    if principal is None:
        code = unit or settings.open_data_unit
        if code is None:
            raise Invalid("say which unit with ?unit=CODE")
        await scoped_unit(session, _Everyone(), code)
    else:
        code = await scoped_unit(session, principal, unit or settings.open_data_unit)
    this_month = local_date(datetime.now(UTC)).replace(day=1)
    last = _month(end, "to") if end else this_month
    first = _month(start, "from") if start else last.replace(year=last.year - 1)
    if first > last:
        raise Invalid("`from` is after `to`")
    return code, await open_rows(session, code, first, last)


class _Everyone:
    """The scope of a public request: every unit."""

    unit_code: str | None = None


@router.get(
    "/kpis.csv",
    summary="The KPIs per unit and month as CSV, for an open-data portal (aggregates only)",
    response_class=Response,
    description=_PUBLIC_NOTE,
    responses={200: {"content": {"text/csv": {}}, "description": "The CSV, licence first"}},
)
async def open_data_csv(
    request: Request,
    session: SessionDep,
    unit: str | None = Query(default=None, description="GSO code: this unit and its subtree"),
    start: str | None = Query(default=None, alias="from", description="first month, 2026-01"),
    end: str | None = Query(default=None, alias="to", description="last month, 2026-11"),
    principal: Principal | None = Depends(open_data_reader),
) -> Response:
    code, rows = await _rows(request, session, principal, unit, start, end)
    licence = get_ctx(request).settings.open_data_licence
    return Response(
        as_csv(rows, licence),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ioc-kpis-{code}.csv"'},
    )


@router.get(
    "/kpis.json",
    summary="The KPIs per unit and month as JSON, for an open-data portal (aggregates only)",
    description=_PUBLIC_NOTE,
)
async def open_data_json(
    request: Request,
    session: SessionDep,
    unit: str | None = Query(default=None, description="GSO code: this unit and its subtree"),
    start: str | None = Query(default=None, alias="from", description="first month, 2026-01"),
    end: str | None = Query(default=None, alias="to", description="last month, 2026-11"),
    principal: Principal | None = Depends(open_data_reader),
) -> dict[str, object]:
    code, rows = await _rows(request, session, principal, unit, start, end)
    return {
        "licence": get_ctx(request).settings.open_data_licence,
        "unit": code,
        "generated_at": datetime.now(UTC).isoformat(),
        "rows": [asdict(r) for r in rows],
    }
