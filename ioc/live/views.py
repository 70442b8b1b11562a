"""`GET /ws`: the handshake checks (Origin, token, role), then a `ScreenConnection` per socket.

Refusals before the upgrade are plain HTTP answers with a problem+json body (401 no or bad
token, 403 wrong role or Origin, 503 hub not ready), so a browser or `websockets` client
sees why. Refusals after it (scope, bad messages) are an `error` message, then close 1008.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from fastapi.security.utils import get_authorization_scheme_param
from starlette.websockets import WebSocketDisconnect

from ioc.api import problem
from ioc.auth import principal_for_token, require_role
from ioc.context import AppContext
from ioc.errors import Forbidden, IocError, Unauthorized, Unavailable
from ioc.live.connection import ScreenConnection
from ioc.live.hub import Hub

router = APIRouter(tags=["live"])


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers send `Origin`; other clients don't and are judged by their token alone.

    With no allow-list, only the page's own host may open the socket (a screen served by
    this server); otherwise the origin must be listed exactly (scheme://host[:port])."""
    if origin is None:
        return True
    if allowed:
        return origin.rstrip("/") in {o.rstrip("/") for o in allowed} or "*" in allowed
    return bool(host) and urlsplit(origin).netloc.lower() == (host or "").lower()


async def _deny(websocket: WebSocket, error: IocError) -> None:
    response = problem(error.status, error.title, error.detail, slug=error.type_slug)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:  # servers without the denial extension answer a bare 403
        await websocket.close(1008, error.detail[:120])


@router.websocket("/ws")
async def live_socket(websocket: WebSocket) -> None:
    """Live screens (docs/api.md §5): subscribe to a unit, get a snapshot, then its events."""
    ctx: AppContext = websocket.app.state.ctx
    hub = ctx.handles.get(Hub)
    settings = ctx.settings
    if not origin_allowed(
        websocket.headers.get("origin"), websocket.headers.get("host"), settings.ws_allowed_origins
    ):
        await _deny(
            websocket,
            Forbidden(
                f"origin {websocket.headers.get('origin')} may not open /ws; "
                "add it to IOC_WS_ALLOWED_ORIGINS"
            ),
        )
        return
    scheme, value = get_authorization_scheme_param(websocket.headers.get("authorization"))
    token = value if scheme.lower() == "bearer" and value else websocket.query_params.get("token")
    if not token:
        await _deny(
            websocket,
            Unauthorized("send `Authorization: Bearer <token>` or ?token=<token>"),
        )
        return
    try:
        principal = await hub.principal(token, principal_for_token)
        require_role(principal, "operator")
    except IocError as exc:
        await _deny(websocket, exc)
        return
    try:
        if not hub.ready.is_set():  # (wait_for costs a task: not on every handshake)
            await asyncio.wait_for(hub.ready.wait(), timeout=10)
    except TimeoutError:
        await _deny(websocket, Unavailable("live hub not ready; retry with backoff"))
        return
    try:
        await websocket.accept()
    except (WebSocketDisconnect, OSError):
        return  # the client gave up during the handshake
    await ScreenConnection(hub, websocket, principal).run()
