"""The FastAPI app factory. The lifespan owns every resource: the database, the background
services, the live hub. Rooms contribute routers (`_routers`) and services (`_services`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from ioc import __version__, metrics
from ioc.api import limits, problems
from ioc.db import Database, upgrade
from ioc.db.engine import asyncpg_dsn, resolve_database_url
from ioc.events import Listener
from ioc.services import LoopService
from ioc.settings import Settings

log = logging.getLogger("ioc.api")

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class AppContext:
    """Everything one running app owns; built in the lifespan, reachable as `app.state.ctx`."""

    settings: Settings
    db: Database
    listener: Listener
    services: list[LoopService] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    # Room-specific handles (live hub, collector runners…) registered by the rooms.
    rooms: dict[str, Any] = field(default_factory=dict)


def _routers() -> list[APIRouter]:
    from ioc import feeds
    from ioc.alerts.views import router as alerts_router
    from ioc.api import health
    from ioc.collectors.views import router as collectors_router
    from ioc.kpis.views import router as kpis_router
    from ioc.live import router as live_router
    from ioc.privacy.views import router as privacy_router
    from ioc.screen import router as screen_router
    from ioc.units.views import router as units_router

    return [
        health.router,
        units_router,
        collectors_router,
        kpis_router,
        screen_router,
        *feeds.routers(),
        privacy_router,
        live_router,
        alerts_router,
    ]


def _services(ctx: AppContext) -> list[LoopService]:
    from ioc import feeds
    from ioc.alerts.loops import build_services as alert_services
    from ioc.collectors.pull import build_services as collector_services
    from ioc.kpis import kpi_services
    from ioc.live import live_services
    from ioc.privacy.service import PrivacyPurge

    return [
        *collector_services(ctx),
        *kpi_services(ctx),
        *feeds.build_services(ctx),
        PrivacyPurge(ctx.db, ctx.settings),
        *live_services(ctx),
        *alert_services(ctx),
    ]


def create_app(settings: Settings, *, database_url: str | None = None) -> FastAPI:
    """Build the app. `database_url` overrides settings (tests, embedded server)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or resolve_database_url(settings)
        if settings.migrate_on_start:
            await upgrade(url)
        db = Database(url, pool_size=settings.db_pool_size)
        ctx = AppContext(settings=settings, db=db, listener=Listener(asyncpg_dsn(url)))
        app.state.ctx = ctx
        # Rooms subscribe their listener callbacks while building their services.
        ctx.services = _services(ctx)
        ctx.listener.start()
        for service in ctx.services:
            service.start()
        log.info("ioc %s ready on %s", __version__, settings.public_url)
        try:
            yield
        finally:
            for service in reversed(ctx.services):
                try:
                    await service.stop()
                except Exception:  # the others must still stop and release their leases
                    log.exception("stopping %s failed", service.name)
            await ctx.listener.stop()
            await db.close()

    app = FastAPI(
        title="ioc",
        version=__version__,
        summary="Live KPIs of a provincial Intelligent Operations Centre",
        description=(
            "Collect dossiers (portal), citizen reports (1022 hotline) and e-documents (edXML); "
            "compute the government's indicators per unit; stream them to screens; alert "
            "department heads; feed district IOCs. Every route but /healthz, /readyz and "
            "/metrics needs `Authorization: Bearer <token>` (`ioc token create`)."
        ),
        lifespan=lifespan,
    )
    problems.install(app)
    # Input and rate limits run before routing, for every route (docs/security.md).
    limits.install(app, settings)

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    for router in _routers():
        app.include_router(router)
    return app
