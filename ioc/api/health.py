"""Liveness, readiness and metrics: the only routes without a token (docs/api.md §0, §8)."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ioc import metrics
from ioc.api.deps import get_ctx
from ioc.auth import bearer_token
from ioc.db import current_heads, script_heads
from ioc.errors import Unauthorized

router = APIRouter(tags=["health"])
READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ready", "not_ready"]},
        "checks": {"type": "object", "description": "Each check's report; `ok` false fails."},
    },
}


@router.get(
    "/healthz",
    summary="The process is alive",
    description=(
        "Answers while the ioc process runs; for load balancers and orchestrators. No token."
    ),
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database reachable, migrations at head, collectors healthy",
    description=(
        "Whether this replica can serve: database reachable, migrations applied, and each part's "
        "own check; 503 with the same report when not. No token."
    ),
    responses={
        200: {"content": {"application/json": {"schema": READINESS}}},
        503: {
            "description": "Not ready: the same report, `status` `not_ready` (a report for "
            "orchestrators, not a problem detail).",
            "content": {"application/json": {"schema": READINESS}},
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    ctx = get_ctx(request)
    checks: dict[str, Any] = {}
    ready = True
    try:
        await ctx.db.ping()
        checks["database"] = {"ok": True}
    except (TimeoutError, OSError, Exception) as exc:  # any failure means "not ready"
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        ready = False
    if ready:
        try:
            applied, shipped = await current_heads(ctx.db.url), script_heads()
            ok = applied == shipped
            checks["migrations"] = {
                "ok": ok,
                "applied": sorted(applied),
                "expected": sorted(shipped),
            }
            ready = ready and ok
        except Exception as exc:  # same: report, don't crash the probe
            checks["migrations"] = {"ok": False, "error": type(exc).__name__}
            ready = False
    for name, check in ctx.readiness.items():
        try:
            detail = await check()
        except Exception as exc:  # a broken check is a not-ready component
            detail = {"ok": False, "error": type(exc).__name__}
        checks[name] = detail
        ready = ready and bool(detail.get("ok", True))
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Counters and gauges for Prometheus: ingest counts, collector lag, websocket clients, alert"
        " states, KPI values. No token, unless `IOC_METRICS_TOKEN` is set."
    ),
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        401: {"description": "`IOC_METRICS_TOKEN` is set and the request did not send it."},
    },
)
async def prometheus_metrics(request: Request) -> Response:
    ctx = get_ctx(request)
    expected = ctx.settings.metrics_token
    if expected:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("/metrics is protected: send the configured IOC_METRICS_TOKEN")
    pool = ctx.db.engine.pool
    metrics.DB_POOL_CHECKED_OUT.set(getattr(pool, "checkedout", lambda: 0)())
    metrics.DB_POOL_SIZE.set(getattr(pool, "size", lambda: 0)())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
