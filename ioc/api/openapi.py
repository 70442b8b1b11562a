"""The OpenAPI description, made true for every route at once (served at `/openapi.json`).

FastAPI describes each route's parameters, bodies and 2xx answers from its code; what it
cannot see is what the layers around the routes do. This module adds it, from the routes
themselves, so a new route is described like the others without anyone remembering to:

- the bearer scheme is declared by `ioc.auth.authenticate` (Swagger's *Authorize*); here
  each operation also says who may call it, from its `require(...)` roles;
- every error an operation can answer, as `application/problem+json` with the `Problem`
  schema: 401/403 where a token is needed, 404 where the path names an object, 400 and 413
  where a body is read (malformed JSON, too large), 422 where anything is validated
  (FastAPI's own `HTTPValidationError` schema is replaced), 429 where the rate limiter
  applies, 500, and 503 where the database is used;
  statuses a route declares itself (`responses={409: {...}}`) get the same content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi

from ioc.api.problem_types import PROBLEM_TYPES
from ioc.api.problems import PROBLEM
from ioc.api.ratelimit import limit_class
from ioc.auth import ROLE_IMPLIES

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem detail: what went wrong and what to do. `GET` its "
    "`type` for an explanation in Vietnamese and English.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "enum": sorted(t.uri for t in PROBLEM_TYPES.values()),
            "description": "The kind of error, `/problems/<name>` (stable: match on it).",
            "examples": ["/problems/out-of-scope"],
        },
        "title": {"type": "string", "description": "A short summary of the kind."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What was wrong in this request."},
        "errors": {
            "type": "array",
            "description": 'Per-field reasons, e.g. `{"field": "body.threshold", "message": "…"}`.',
            "items": {"type": "object"},
        },
    },
}
# Why an operation may answer each status (the problem types say more).
ERRORS: dict[int, str] = {
    400: "The body is not valid JSON (`/problems/json-malformed`) or not this endpoint's format "
    "at all (`/problems/bad-body`).",
    401: "No token, or an unknown, revoked or expired one (`/problems/unauthorized`).",
    403: "The token's role may not do this (`/problems/forbidden`), or the unit or object is "
    "outside the token's unit (`/problems/out-of-scope`).",
    404: "Nothing has this id (`/problems/not-found`).",
    409: "The object's state does not allow this (`/problems/conflict`).",
    413: "The body is over the size limit (`/problems/too-large`).",
    415: "Wrong `Content-Type` (`/problems/unsupported-media-type`).",
    422: "A parameter or field is invalid, listed in `errors` (`/problems/invalid`), the unit "
    "is unknown (`/problems/unknown-unit`), or a JSON limit is passed "
    "(`/problems/json-array-too-long`…).",
    429: "Too many requests for this token; wait `Retry-After` seconds (`/problems/rate-limited`).",
    500: "A fault in ioc; `detail` carries an error id that is in the log (`/problems/internal`).",
    503: "The database is unreachable; retry after `Retry-After` seconds "
    "(`/problems/unavailable`).",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}
_BODY_METHODS = frozenset({"post", "put", "patch"})
# Routes that answer without touching the database.
_NO_DATABASE = frozenset({"/healthz", "/metrics"})
# Error answers that are not problems: the readiness report is the same JSON either way.
NOT_PROBLEMS = frozenset({("get", "/readyz", "503")})
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    """Serve the completed description at `app.openapi_url` (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI description with errors, roles and problems added (module doc)."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    roles = dict(_route_roles(app))
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _complete(path, method, operation, roles.get((method, path)))
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return schema


def _complete(path: str, method: str, operation: dict[str, Any], roles: set[str] | None) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {500}
    if operation.get("security"):
        statuses |= {401, 403}
    if roles:
        statuses.add(403)
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if method in _BODY_METHODS:  # the input limits read every body (ioc.api.limits)
        statuses |= {400, 413}
    if limit_class(path) is not None:
        statuses.add(429)
    if path not in _NO_DATABASE:
        statuses.add(503)
    for status in sorted(statuses):
        responses.setdefault(str(status), {})
    for code, response in responses.items():
        if code[0] not in "45" or (method, path, code) in NOT_PROBLEMS:
            continue
        status = int(code)
        if not response.get("description") or response["description"] == "Validation Error":
            response["description"] = ERRORS.get(status, "An error (see `type`).")
        response["content"] = {PROBLEM: {"schema": PROBLEM_REF}}
        if status in _HEADERS:
            response.setdefault("headers", _HEADERS[status])
    if roles:
        who = ", ".join(f"`{r}`" for r in sorted(roles))
        operation["description"] = (
            operation.get("description", "").rstrip() + f"\n\n**Who may call it**: {who}."
        ).lstrip()


def _route_roles(app: FastAPI) -> Iterator[tuple[tuple[str, str], set[str]]]:
    """((method, path), the roles whose tokens may call it) of every route with a role check."""
    for route in _walk(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        required = set(_required_roles(dependant))
        if not required:
            continue
        allowed = {role for role, grants in ROLE_IMPLIES.items() if grants & required}
        for method in getattr(route, "methods", ()):
            yield (method.lower(), route.path), allowed


def _walk(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()
        else:
            yield route


def _required_roles(dependant: Dependant) -> Iterator[str]:
    stack = [dependant]
    while stack:
        current = stack.pop()
        yield from getattr(current.call, "ioc_roles", ())
        stack.extend(current.dependencies)
