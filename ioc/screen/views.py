"""The wall screen: `/screen` (the page) and `/screen/assets/<file>` (its scripts and styles).

No route here needs a token: the page and its scripts hold no data. The page reads its token
from the URL fragment (`#token=…`, never sent to the server) or from the login form, keeps it
in the browser's localStorage, and sends it itself to `/api/v1/*` and `/ws`.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from ioc.api import SessionDep
from ioc.auth import Principal, authenticate, require
from ioc.errors import NotFound
from ioc.screen.files import ASSETS, INDEX, MEDIA_TYPES
from ioc.screen.positions import placed_children
from ioc.units import scoped_unit

router = APIRouter(tags=["screen"])

# The page loads only its own scripts and styles and talks only to its own origin (the API
# and the websocket: Chromium and Firefox let 'self' cover ws:/wss: of the same host).
# Inline scripts are refused, so data that reaches the DOM can never become code.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
# `no-cache` = revalidate every time (ETag): a TV left on for months picks up a new version
# at its next reload, and an unchanged file costs a 304.
COMMON_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _file(request: Request, path: Path, headers: dict[str, str]) -> Response:
    """The file, or a bodiless 304 when the browser's copy (If-None-Match) is current."""
    response = FileResponse(
        path, media_type=MEDIA_TYPES[path.suffix], headers=headers, stat_result=path.stat()
    )
    etag = response.headers["etag"]
    given = request.headers.get("if-none-match", "")
    if etag in {tag.strip() for tag in given.split(",")}:
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response


@router.get(
    "/screen",
    summary="The wall screen (HTML); ?unit=CODE&window=WINDOW#token=…",
    include_in_schema=False,  # a page, not an operation (like /docs)
)
async def screen_page(request: Request) -> Response:
    return _file(request, INDEX, {**COMMON_HEADERS, "Content-Security-Policy": CSP})


@router.get(
    "/screen/assets/{name}",
    summary="A script, style or icon of the wall screen",
    include_in_schema=False,
)
async def screen_asset(request: Request, name: str) -> Response:
    # Only files listed when the package was imported are served: no path from the request
    # ever reaches the filesystem, so `..` and friends cannot escape the directory.
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"no screen asset named {name!r}")
    return _file(request, path, COMMON_HEADERS)


class PlacedOut(BaseModel):
    code: str
    name: str
    level: str
    lat: float | None
    lon: float | None
    source: str | None


class MapOut(BaseModel):
    unit: PlacedOut
    children: list[PlacedOut]


@router.get(
    "/api/v1/screen/map/{code}",
    response_model=MapOut,
    dependencies=[Depends(authenticate)],
    description="Where to draw a unit's direct children on the wall's map: each child's "
    "position and name. Any reading role, for units within its token's unit.",
    summary="A unit's children with their map positions (for the wall's map view)",
)
async def screen_map(
    code: str, session: SessionDep, principal: Principal = Depends(require("operator"))
) -> MapOut:
    await scoped_unit(session, principal, code)
    unit, kids = await placed_children(session, code)
    return MapOut(unit=PlacedOut(**asdict(unit)), children=[PlacedOut(**asdict(k)) for k in kids])
