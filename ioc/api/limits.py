"""Input limits as ASGI middleware: body size while streaming, JSON shape before any route.

Why middleware and not per-route code: a limit must hold for every route, present and
future, before a byte reaches a parser that could be made to allocate without bound.

- Body size: `Content-Length` over the limit answers 413 at once; a chunked body is counted
  as it streams and cut off at the limit (413), never read to the end first. The rest of
  the body is then read and dropped (up to the keep-alive timeout) so that the client can
  read the 413. XML bodies have their own, smaller limit (`xml_max_bytes`).
- JSON bodies (`application/json`, `*+json`) are parsed once here (the C parser, with
  `NaN`/`Infinity` refused because PostgreSQL's jsonb refuses them) and walked iteratively:
  nesting depth, array length, object size, string length, and the two strings PostgreSQL
  cannot store (NUL, lone surrogates). Malformed → 400, over a limit → 422. Routes may reuse
  the parsed value through `request_json(request)` instead of parsing again.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import FastAPI, Request

from ioc import metrics
from ioc.api.asgi import ASGIApp, Message, Receive, Scope, Send
from ioc.api.problems import problem
from ioc.api.ratelimit import RateLimitMiddleware
from ioc.settings import Settings

STATE_KEY = "ioc.json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Escapes that decode to strings PostgreSQL rejects: only then are strings inspected one by one.
_SUSPECT_ESCAPE = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]")


class LimitExceeded(Exception):
    """A request broke an input limit; carries the problem to answer with."""

    def __init__(self, status: int, title: str, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.reason = reason


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _is_xml(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/xml", "text/xml") or media.endswith("+xml")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _NonFinite(ValueError):
    pass


def _finite_float(literal: str) -> float:
    # `1e400` is valid JSON that Python reads as Infinity: refused here, once, for every body.
    number = float(literal)
    if not math.isfinite(number):
        raise _NonFinite(f"{literal} is too large to be a number ioc can store")
    return number


def parse_json(body: bytes, settings: Settings) -> Any:
    """Parse and check a JSON body against the settings' limits, or raise `LimitExceeded`."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        raise LimitExceeded(422, "Number out of range", str(exc), "json_non_finite") from None
    except RecursionError:
        raise LimitExceeded(
            422,
            "JSON too deep",
            f"the JSON body is nested deeper than {settings.json_max_depth} levels",
            "json_depth",
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LimitExceeded(
            400, "Malformed JSON", f"the body is not valid UTF-8 JSON: {exc}", "json_malformed"
        ) from None
    check_json(value, settings, strict_text=_SUSPECT_ESCAPE.search(body) is not None)
    return value


def check_json(value: Any, settings: Settings, *, strict_text: bool = True) -> None:
    """Walk `value` without recursion; raise `LimitExceeded` at the first broken limit.

    Hot path (every JSON request, up to 10,000 records): strings are checked where they
    stand and only containers go on the stack; a node's path is a (parent, key) chain that
    is spelled out only in an error message."""
    max_array = max(settings.json_max_array, settings.ingest_max_records)
    max_depth = settings.json_max_depth
    max_chars = settings.json_max_string_chars
    max_keys = settings.json_max_object_keys
    if type(value) is str:
        _check_text(value, None, "", max_chars, strict_text)
        return
    if type(value) not in (dict, list):
        return
    stack: list[tuple[Any, int, Where]] = [(value, 1, None)]
    while stack:
        node, depth, where = stack.pop()
        if depth > max_depth:
            raise LimitExceeded(
                422,
                "JSON too deep",
                f"{_spell(where)} is nested deeper than {max_depth} levels",
                "json_depth",
            )
        if type(node) is list:
            if len(node) > max_array:
                raise LimitExceeded(
                    422,
                    "JSON array too long",
                    f"{_spell(where)} has {len(node)} items; at most {max_array} are accepted "
                    "per request",
                    "json_array",
                )
            for index, item in enumerate(node):
                kind = type(item)
                if kind is str:
                    if strict_text or len(item) > max_chars:
                        _check_text(item, where, index, max_chars, strict_text)
                elif kind is dict or kind is list:
                    stack.append((item, depth + 1, (where, index)))
            continue
        if len(node) > max_keys:
            raise LimitExceeded(
                422,
                "JSON object too large",
                f"{_spell(where)} has {len(node)} keys; at most {max_keys} are accepted",
                "json_keys",
            )
        for key, item in node.items():
            if strict_text or len(key) > max_chars:
                _check_text(key, where, f"{key[:32]} (a key)", max_chars, strict_text)
            kind = type(item)
            if kind is str:
                if strict_text or len(item) > max_chars:
                    _check_text(item, where, key, max_chars, strict_text)
            elif kind is dict or kind is list:
                stack.append((item, depth + 1, (where, key)))


# Where a node sits: None for the root, else (where its parent sits, its key or index).
Where = tuple[Any, str | int] | None


def _spell(where: Where) -> str:
    """`$.data[3].ChuHoSo` for a (parent, key) chain."""
    parts: list[str] = []
    while where is not None:
        where, key = where
        parts.append(f"[{key}]" if isinstance(key, int) else f".{str(key)[:64]}")
    return "$" + "".join(reversed(parts))


def _check_text(text: str, where: Where, key: str | int, max_chars: int, strict: bool) -> None:
    path = _spell((where, key)) if key != "" else "$"
    if len(text) > max_chars:
        raise LimitExceeded(
            422,
            "JSON string too long",
            f"{path} has {len(text)} characters; at most {max_chars} are accepted",
            "json_string",
        )
    if strict and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise LimitExceeded(
                422,
                "Invalid text",
                f"{path} contains an unpaired UTF-16 surrogate, which cannot be stored",
                "json_text",
            ) from None
    if strict and "\x00" in text:
        raise LimitExceeded(
            422, "Invalid text", f"{path} contains a NUL character (\\u0000)", "json_text"
        )


def request_json(request: Request) -> Any:
    """The request's JSON body as already parsed and checked by the middleware, if it was."""
    state: dict[str, Any] = request.scope.get("state") or {}
    return state.get(STATE_KEY)


class BodyLimitMiddleware:
    """Body size and JSON shape limits for every HTTP route (websockets pass through)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, content_type: str) -> int:
        if _is_xml(content_type):
            return min(self.settings.xml_max_bytes, self.settings.ingest_max_body_bytes)
        return self.settings.ingest_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = self._limit(content_type)
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        if declared > limit:
            await self._refuse(scope, receive, send, _too_large(limit))
            return
        if _is_json(content_type):
            await self._json(scope, receive, send, limit)
        else:
            await self._streamed(scope, receive, send, limit)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Buffer the (bounded) body, check it, then replay it to the route in one piece."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                parsed = parse_json(body, self.settings)
            except LimitExceeded as exc:
                await self._refuse(scope, receive, send, exc)
                return
            scope.setdefault("state", {})[STATE_KEY] = parsed
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Count bytes as the route reads them; past the limit, answer 413 instead of it."""
        size = 0
        exceeded: LimitExceeded | None = None
        started = False

        async def counting_receive() -> Message:
            nonlocal size, exceeded
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    exceeded = _too_large(limit)
                    raise exceeded
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded is not None:
                return  # the route's own answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except LimitExceeded:
            if exceeded is None:
                raise
        if exceeded is not None and not started:
            await self._refuse(scope, receive, send, exceeded)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: LimitExceeded) -> None:
        metrics.HARDENING_REJECTED.labels(exc.reason).inc()
        # No `Connection: close`: closing a socket with the client's body still arriving
        # makes the kernel send a reset, which discards the 413 from the client's buffer
        # before it reads it. Kept open, uvicorn reads and drops the rest of the body (a
        # lingering close bounded by its keep-alive timeout, 5 s, after which it closes),
        # so a source system that writes its whole batch before reading still learns why.
        response = problem(exc.status, exc.title, exc.detail, slug=_TYPES[exc.reason])
        await response(scope, receive, send)


# The problem type (ioc.api.problem_types) of each limit; the reason itself labels the metric.
_TYPES = {
    "body_too_large": "too-large",
    "json_malformed": "json-malformed",
    "json_non_finite": "number-out-of-range",
    "json_depth": "json-too-deep",
    "json_array": "json-array-too-long",
    "json_keys": "json-object-too-large",
    "json_string": "json-string-too-long",
    "json_text": "invalid-text",
}


def _too_large(limit: int) -> LimitExceeded:
    return LimitExceeded(
        413,
        "Request body too large",
        f"the body exceeds the limit of {limit} bytes; send smaller batches",
        "body_too_large",
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Install the input limits and the rate limiter (outermost: refuse before reading)."""
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(RateLimitMiddleware, settings=settings)
