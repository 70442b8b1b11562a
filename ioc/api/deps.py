"""Dependencies shared by every router: the request's unit of work and the scope check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.auth import Principal
from ioc.errors import OutOfScope
from ioc.units import get_unit, is_within

if TYPE_CHECKING:
    from ioc.api.app import AppContext


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the route returns, rolled back on error."""
    ctx = get_ctx(request)
    async with ctx.db.sessionmaker() as session, session.begin():
        yield session


# scope="function": the commit runs when the route returns, before the response is sent.
# FastAPI's default ("request") runs a yield dependency's exit after the response has gone,
# which would acknowledge a write (a 2xx) before its commit, and let a client's next request
# miss what it has just written.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def scoped_unit(session: AsyncSession, principal: Principal, code: str | None) -> str:
    """The unit a request is about, checked against the token's scope.

    `None` means the token's own unit. Unknown units answer 422, units outside the token's
    subtree 403 — the same answer whether or not the unit exists elsewhere would leak less,
    but operators need to know a typo from a refusal, and unit codes are public data.
    """
    if code is None:
        if principal.unit_code is None:
            raise OutOfScope("this token covers every unit: say which one with ?unit=CODE")
        return principal.unit_code
    await get_unit(session, code)
    if principal.unit_code is not None and not await is_within(session, principal.unit_code, code):
        raise OutOfScope(f"unit {code} is outside this token's unit {principal.unit_code}")
    return code
