"""Dependencies shared by every router: the request's unit of work and the app context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ioc.context import AppContext


def get_ctx(request: Request) -> AppContext:
    """The running app's context (settings, database, the rooms' handles)."""
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
