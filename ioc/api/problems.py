"""RFC 9457 problem details for every error (docs/api.md §0). Never a stack trace."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ioc.api.asgi import ASGIApp, Message, Receive, Scope, Send
from ioc.api.problem_types import for_status, problem_type
from ioc.errors import IocError

log = logging.getLogger("ioc.api")
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json answer; `slug` names its type in `ioc.api.problem_types` (else the
    status's general type)."""
    kind = problem_type(slug) if slug else for_status(status)
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Map every error to problem+json."""

    @app.exception_handler(IocError)
    async def _ioc_error(request: Request, exc: IocError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        retry = getattr(exc, "retry_after", None)
        if retry is not None:
            headers = {**(headers or {}), "Retry-After": str(int(retry))}
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.type_slug,
            errors=exc.errors,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return problem(
            422,
            "Invalid request",
            f"{len(errors)} field(s) are invalid",
            slug="invalid",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matched; a path
            # served by several routes (GET and PATCH and DELETE /x/{id}) has them all.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail), headers=headers)

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        # The database restarting or unreachable is an outage, not a bug: 503 + Retry-After,
        # so clients retry (ingest is idempotent) instead of treating the batch as refused.
        if database_unavailable(exc):
            log.warning(
                "database unavailable on %s %s: %s",
                request.scope.get("method", "WEBSOCKET"),
                request.url.path,
                type(exc).__name__,
            )
            return problem(
                503,
                "Service unavailable",
                "the database (or another service this request needs) is unreachable; retry "
                "later — re-sending an ingest batch is safe",
                slug="unavailable",
                headers={"Retry-After": "5"},
            )
        if database_rejected_value(exc):
            # A value from the request the database cannot hold (an id beyond bigint, a
            # malformed number): the client's input, not a server fault — never a 500.
            return problem(
                422,
                "Invalid request",
                "a value in the request is out of range or malformed (e.g. an id beyond "
                "9223372036854775807); check the path and query parameters",
                slug="invalid",
            )
        return _unexpected(request, exc)

    for error_class in DATABASE_ERRORS:
        app.add_exception_handler(error_class, _database_error)

    app.add_middleware(UnexpectedErrors)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    method = request.scope.get("method", "WEBSOCKET")
    log.error("unexpected error %s on %s %s", error_id, method, request.url.path, exc_info=exc)
    return problem(
        500,
        "Internal error",
        f"an unexpected error occurred; quote error id {error_id} to the operators",
        slug="internal",
    )


class UnexpectedErrors:
    """A bug's answer: one 500 problem and one log line, and the connection stays usable.

    Not Starlette's `exception_handler(Exception)`: that one answers from the outermost
    middleware and then re-raises, so the server logs the error again (with its own
    traceback renderer) and closes the keep-alive connection under the client's next
    request. Installed inside the app's own middlewares, so they see the 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # half an answer is out: only closing the connection can end it
                raise
            response = _unexpected(Request(scope), exc)
            await response(scope, receive, send)


# Errors that may mean "the database is down or restarting"; `database_unavailable` decides.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
)
# SQLSTATE classes/codes of an unavailable server: connection exceptions (08), too many
# connections (53300), admin/crash shutdown and "starting up" (57P01..57P03).
_UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")


def database_unavailable(exc: BaseException) -> bool:
    """True if `exc` (or what caused it) says the database cannot be reached right now."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            OSError
            | TimeoutError
            | sqlalchemy.exc.TimeoutError
            | asyncpg.InterfaceError
            | asyncpg.exceptions.ConnectionDoesNotExistError,
        ) and not isinstance(current, ValueError):  # asyncpg's DataError is bad input
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        current = current.__cause__ or current.__context__
    return False


def database_rejected_value(exc: BaseException) -> bool:
    """True if the database refused a value (SQLSTATE class 22, data exception)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _allowed(request: Request) -> list[str]:
    """Every method some route of the app serves at this request's path."""
    scope = {**request.scope, "method": "\0"}  # a method no route has: paths only
    methods: set[str] = set()
    for route in _flat(request.app.router.routes):
        match, _ = route.matches(scope)
        if match == Match.PARTIAL:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods - {"HEAD"}) or ["GET"]


def _flat(routes: list[Any]) -> Iterator[Any]:
    """Routes with included routers flattened (FastAPI keeps an included router whole)."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()
        else:
            yield route
