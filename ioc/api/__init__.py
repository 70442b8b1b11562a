"""The HTTP layer: app factory, problem+json errors, shared dependencies. Routers only wire."""

from ioc.api.app import AppContext, create_app
from ioc.api.deps import SessionDep, get_ctx, get_session, scoped_unit

__all__ = ["AppContext", "SessionDep", "create_app", "get_ctx", "get_session", "scoped_unit"]
