"""The console is a client of ioc's own API, called in process (no socket) with the
session's token: every list, object and change a page shows goes through the same route,
role check and unit scope as `curl` would, so the console never re-implements a rule."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request


class ApiError(Exception):
    """The API refused: its status and problem+json `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


async def call(
    request: Request,
    token: str,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    json: Any = None,
) -> Any:
    """`method path` on this app with `Authorization: Bearer token`; the JSON answer, None
    for 204, `ApiError` for any 4xx/5xx."""
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ioc.console") as http:
        response = await http.request(
            method, path, params=params, json=json, headers={"Authorization": f"Bearer {token}"}
        )
    if response.status_code >= 400:
        detail = response.reason_phrase
        try:
            body = response.json()
            detail = str(body.get("detail") or body.get("title") or detail)
        except ValueError:
            pass
        raise ApiError(response.status_code, detail)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


async def call_public(request: Request, path: str) -> Any:
    """GET a public route (no token) of this app; its JSON body whatever the status."""
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ioc.console") as http:
        response = await http.get(path)
    return response.json()
