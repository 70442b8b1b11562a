"""Per-token rate limits: a token bucket per (class, token), in the memory of the app.

Why in process memory and not PostgreSQL: the limiter must answer before any database work
(it protects the database too), and a bucket per replica costs nothing. The price: with N
replicas behind a load balancer a token gets up to N × the configured rate — size the
settings per replica (docs/security.md).

Two classes with their own settings: `ingest` (`/api/v1/ingest/…`) and `api` (everything
else that needs a token, the `/ws` handshake included). The key is a digest of the bearer
token (the token itself is never kept), or the client address when no token is sent.
Over the limit → `429` problem+json with `Retry-After` (whole seconds, at least 1).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param

from ioc import metrics
from ioc.api.asgi import ASGIApp, Message, Receive, Scope, Send
from ioc.api.problems import problem
from ioc.errors import IocError
from ioc.settings import Settings

# Probes, metrics and static pages are not rate limited: orchestrators poll them.
EXEMPT_PREFIXES = (
    "/healthz", "/readyz", "/metrics", "/static", "/screen", "/docs", "/redoc", "/problems",
)  # fmt: skip
EXEMPT_PATHS = frozenset({"/openapi.json", "/favicon.ico"})
INGEST_PREFIX = "/api/v1/ingest"


class RateLimited(IocError):
    """Too many requests for this token; `retry_after` seconds until the next is accepted."""

    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucket:
    """`rate` requests per second on average, up to `burst` at once, per key.

    At most `max_keys` buckets are kept (least recently used dropped first), so a flood of
    distinct keys cannot grow memory without bound; a dropped key simply starts full again.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token of `key`: 0.0 if allowed, else the seconds until one is available."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


def client_key(scope: Scope) -> str:
    """The bucket key of a request: a digest of its token, else its client address."""
    headers = dict(scope.get("headers") or [])
    scheme, value = get_authorization_scheme_param(
        headers.get(b"authorization", b"").decode("latin-1")
    )
    token = value if scheme.lower() == "bearer" and value else None
    if token is None and scope["type"] == "websocket":
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [None])[0]
    if token:
        return "t:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
    client = scope.get("client")
    return "a:" + (str(client[0]) if client else "unknown")


def limit_class(path: str) -> str | None:
    """`ingest`, `api`, or None for routes that are not rate limited."""
    if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
        return None
    if path.startswith(INGEST_PREFIX):
        return "ingest"
    return "api"


class RateLimitMiddleware:
    """Refuse requests over their token's rate with 429 before any other work is done."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.enabled = settings.rate_limit_enabled
        # The buckets belong to this app instance (built by create_app), not to the module.
        self.buckets = {
            "api": TokenBucket(settings.rate_limit_api_per_second, settings.rate_limit_api_burst),
            "ingest": TokenBucket(
                settings.rate_limit_ingest_per_second, settings.rate_limit_ingest_burst
            ),
            "ws": TokenBucket(
                settings.rate_limit_ws_handshakes_per_second,
                settings.rate_limit_ws_handshakes_burst,
            ),
        }
        self.ws_rate = settings.ws_messages_per_second
        self.ws_burst = settings.ws_messages_burst

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = None
        if self.enabled and scope["type"] in ("http", "websocket"):
            kind = limit_class(scope.get("path", ""))
        if kind is not None and scope["type"] == "websocket":
            # Handshakes have their own budget (see settings), not the token's API budget.
            kind = "ws"
        if kind is None:
            await self.app(scope, receive, send)
            return
        wait = self.buckets[kind].take(client_key(scope))
        if wait <= 0:
            if scope["type"] == "websocket":
                await self.app(scope, self._message_limited(receive, send), send)
            else:
                await self.app(scope, receive, send)
            return
        metrics.HARDENING_REJECTED.labels(f"rate_{kind}").inc()
        exc = RateLimited(
            f"too many {kind} requests for this token; retry after the Retry-After delay "
            f"(limit: IOC_RATE_LIMIT_{'WS_HANDSHAKES' if kind == 'ws' else kind.upper()}"
            "_PER_SECOND / _BURST)",
            retry_after=wait,
        )
        response = problem(
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.type_slug,
            headers={"Retry-After": str(exc.retry_after)},
        )
        if scope["type"] == "websocket":
            await _deny_handshake(scope, send, response)
            return
        await response(scope, receive, send)

    def _message_limited(self, receive: Receive, send: Send) -> Receive:
        """`receive` of one socket, closing it with 1008 when it sends faster than allowed
        (a screen sends a subscribe now and then and pongs; a flood is abuse)."""
        bucket = TokenBucket(self.ws_rate, self.ws_burst, max_keys=1)
        closed = False

        async def limited() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] != "websocket.receive" or closed:
                return message
            if bucket.take("socket") > 0:
                closed = True
                metrics.HARDENING_REJECTED.labels("ws_messages").inc()
                reason = f"more than {self.ws_rate:g} messages per second"
                await send({"type": "websocket.close", "code": 1008, "reason": reason})
                return {"type": "websocket.disconnect", "code": 1008, "reason": reason}
            return message

        return limited


async def _deny_handshake(scope: Scope, send: Send, response: JSONResponse) -> None:
    """Refuse a websocket handshake with the HTTP answer when the server can send one."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:  # 1013 "try again later", before the socket is accepted
        await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
