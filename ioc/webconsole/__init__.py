"""The web console at `/console` (docs/console.md): server-rendered pages for department
heads, districts and IT staff, signed in with an ioc token or the province's single sign-on.

Every page is a client of ioc's own API (called in process with the session's token), so
roles and unit scope are the API's. The app composes `router` and `build_services(ctx)`.
"""

from __future__ import annotations

from fastapi import APIRouter

from ioc.context import AppContext
from ioc.loops import LoopService
from ioc.webconsole import pages_admin, pages_alerts, pages_feeds, views
from ioc.webconsole import tables as _tables  # noqa: F401  (puts the table on ioc.db.metadata)
from ioc.webconsole.session import ConsoleKeys

router = APIRouter()
router.include_router(views.router)
router.include_router(pages_alerts.router)
router.include_router(pages_admin.router)
router.include_router(pages_feeds.router)


def build_services(ctx: AppContext) -> list[LoopService]:
    """No background work: registers the keys that sign the console's cookies."""
    settings = ctx.settings
    ctx.handles.add(
        ConsoleKeys(
            settings.console_secret_key,
            int(settings.console_session_hours * 3600),
            settings.console_cookie_secure,
        )
    )
    return []


__all__ = ["build_services", "router"]
