"""The FastAPI app factory: the composition root (with `ioc.cli`), on top of every room.

The lifespan owns every resource: the database, the listener, the background services. Each
room's package contributes its `router` and `build_services(ctx)`; nothing imports this module
but the command line and tests."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response

from ioc import (
    __version__,
    alerts,
    api,
    collectors,
    digest,
    federation,
    feeds,
    kpis,
    live,
    metrics,
    opendata,
    privacy,
    scorecards,
    screen,
    units,
    webconsole,
)
from ioc.context import AppContext
from ioc.db import Database, asyncpg_dsn, resolve_database_url, upgrade
from ioc.events import Listener
from ioc.loops import LoopService
from ioc.settings import Settings

log = logging.getLogger("ioc.api")


def _routers() -> list[APIRouter]:
    return [
        api.health_router,
        api.docs_router,
        units.router,
        collectors.router,
        kpis.router,
        scorecards.router,
        opendata.router,
        screen.router,
        feeds.router,
        federation.router,
        privacy.router,
        live.router,
        alerts.router,
        webconsole.router,
    ]


def _services(ctx: AppContext) -> list[LoopService]:
    return [
        *collectors.build_services(ctx),
        *kpis.build_services(ctx),
        *scorecards.build_services(ctx),
        *digest.build_services(ctx),
        *feeds.build_services(ctx),
        *privacy.build_services(ctx),
        *live.build_services(ctx),
        *alerts.build_services(ctx),
        *webconsole.build_services(ctx),
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
        if settings.gc_freeze_on_start:
            # A full collection otherwise walks every module and catalogue object each time:
            # ~140 ms of stalled event loop measured in the alerts benchmark
            # (docs/performance.md, "alerts").
            gc.collect()
            gc.freeze()
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
            "department heads; feed district IOCs. Every operation marked with a lock needs "
            "`Authorization: Bearer <token>` (`ioc token create`; *Authorize* here). Every "
            "error is an RFC 9457 problem detail whose `type` (`/problems/<name>`) opens a page "
            "saying what it means and what to do; the interfaces in full: docs/api.md."
        ),
        lifespan=lifespan,
        docs_url=None,  # served from the package by `api.docs_router`, never from a CDN
        redoc_url=None,
    )
    api.install_openapi(app)
    api.install_problems(app)
    # Input and rate limits run before routing, for every route (docs/security.md).
    api.install_limits(app, settings)

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
