"""The HTTP edge every room's router stands on: the request's unit of work and app context,
problem+json errors, input and rate limits, and the health routes (the unit-scope check of
a route is `ioc.units.scoped_unit`).

It sits below the rooms (the app factory that composes them is `ioc.app`)."""

from ioc.api.deps import SessionDep, get_ctx, get_session
from ioc.api.health import router as health_router
from ioc.api.limits import install as install_limits
from ioc.api.limits import request_json
from ioc.api.problems import install as install_problems
from ioc.api.problems import problem

__all__ = [
    "SessionDep",
    "get_ctx",
    "get_session",
    "health_router",
    "install_limits",
    "install_problems",
    "problem",
    "request_json",
]
