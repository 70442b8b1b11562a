"""Domain errors of `ioc`. Each carries its HTTP meaning; `ioc.api` turns them into problem+json."""

from __future__ import annotations


class IocError(Exception):
    """Base of every error `ioc` raises on purpose."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(IocError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Unauthorized(IocError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(IocError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class OutOfScope(Forbidden):
    title = "Outside your unit"
    type_slug = "out-of-scope"


class UnknownUnit(IocError):
    status = 422
    title = "Unknown unit"
    type_slug = "unknown-unit"


class Invalid(IocError):
    status = 422
    title = "Invalid request"
    type_slug = "invalid"


class Conflict(IocError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Unavailable(IocError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"
