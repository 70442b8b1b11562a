"""The one FastAPI dependency that authenticates, checks the role, and gives scope checks.

Every router is built with `dependencies=[Depends(authenticate)]`, and each route asks for
`require("operator", ...)`, which returns the `Principal`. Unit scope is checked through
`ioc.units.scoped_unit`, through the unit tree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from ioc.auth.service import Principal, principal_for_token
from ioc.errors import Forbidden, Unauthorized

# Which roles may do what (docs/api.md §3). "read" = KPIs, alerts, screens.
ROLE_IMPLIES: dict[str, set[str]] = {
    "admin": {"admin", "operator", "department_head", "district", "collector"},
    "department_head": {"department_head", "operator"},
    "district": {"district", "operator"},
    "operator": {"operator"},
    "collector": {"collector"},
}


# Declares the bearer scheme in the OpenAPI description (Swagger's *Authorize*) on every route
# that depends on `authenticate`; it refuses nothing itself (`authenticate` does, as 401).
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="A token printed by `ioc token create --role ROLE --unit CODE --name NAME`, "
    "sent as `Authorization: Bearer <token>`.",
    auto_error=False,
)


def bearer_token(request: Request) -> str | None:
    scheme, value = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and value:
        return value
    return None


async def authenticate(
    request: Request,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Principal:
    """Resolve the request's bearer token once per request (cached on `request.state`)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(
            "send `Authorization: Bearer <token>`; create one with `ioc token create`"
        )
    db = request.app.state.ctx.db
    async with db.sessionmaker() as session:
        principal = await principal_for_token(session, token)
    request.state.principal = principal
    return principal


def require_role(principal: Principal, *roles: str) -> None:
    """Raise `Forbidden` unless the principal's role grants one of `roles`."""
    granted = ROLE_IMPLIES.get(principal.role, set())
    if not granted.intersection(roles):
        raise Forbidden(f"role {principal.role} may not do this (needs {' or '.join(roles)})")


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """Dependency: authenticate and require one of `roles` (admin implies all)."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        require_role(principal, *roles)
        return principal

    dependency.__name__ = f"require_{'_or_'.join(roles)}"
    dependency.ioc_roles = roles  # type: ignore[attr-defined]
    return dependency
