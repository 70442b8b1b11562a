"""The HTTP edge every room's router stands on: the request's unit of work and app context,
problem+json errors, input and rate limits, the health routes, and the API's own description
(`/openapi.json` completed for every route, `/docs`, `/redoc`, `/problems/{name}`). The
unit-scope check of a route is `ioc.units.scoped_unit`.

It sits below the rooms (the app factory that composes them is `ioc.app`)."""

from ioc.api.deps import SessionDep, get_ctx, get_session
from ioc.api.docs import router as docs_router
from ioc.api.health import router as health_router
from ioc.api.limits import install as install_limits
from ioc.api.limits import request_json
from ioc.api.openapi import install as install_openapi
from ioc.api.params import Instant
from ioc.api.problems import install as install_problems
from ioc.api.problems import problem

__all__ = [
    "Instant",
    "SessionDep",
    "docs_router",
    "get_ctx",
    "get_session",
    "health_router",
    "install_limits",
    "install_openapi",
    "install_problems",
    "problem",
    "request_json",
]
