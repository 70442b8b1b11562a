"""The uvicorn websocket protocol `ioc serve` runs: uvicorn's own `websockets-sansio`
protocol, plus one ASGI extension that lets `/ws` write a whole message at once.

Fan-out to thousands of screens spends most of its time in the per-screen ASGI send chain
(Starlette's wrappers, uvicorn's `send` coroutine, the frame built again for every screen).
This protocol offers each websocket scope the extension `ioc.websocket.direct`:

    scope["extensions"]["ioc.websocket.direct"] = {"write": write, "abort": abort}

- `write(wire) -> bool` writes one whole text message to the transport now, synchronously,
  and returns True; or writes nothing and returns False whenever the ASGI `send` would wait
  or fail: the socket not open (before `accept`, after a close was sent or received), the
  transport paused above its high-water mark (a slow reader) or closing, the connection
  lost. The caller then queues the message and sends it with the awaited ASGI `send`,
  which keeps backpressure as it is. The frame of a message is built once for every screen
  (`Wire.frame`, as `websockets.broadcast` would write it); with permessage-deflate
  negotiated, messages under `COMPRESS_MIN_BYTES` go as that same uncompressed frame (RSV1
  unset: RFC 7692 §6 lets a sender choose per message, and the peer's decompressor skips
  it) and larger ones (snapshots) are compressed by the connection's own `websockets`
  protocol. Frames never interleave: each write is whole.
- `abort()` drops the TCP connection. ASGI has no way to drop a connection whose peer
  stopped reading (a close frame waits behind the full buffer forever).

How it is selected, and why that is supported: uvicorn's `ws` option takes a protocol class
or its import string (`uvicorn.Config(ws=WS_IMPLEMENTATION)`, `uvicorn --ws
ioc.live.server:LiveWebSocketProtocol`), and ASGI lets a server offer extensions in
`scope["extensions"]`, which an application uses when present and does without otherwise.
So the application never looks for the server's objects: under another server, another
uvicorn implementation or Starlette's test client the extension is absent and every
message takes the plain ASGI path (slower, still correct). What this class relies on from
its base is small and checked at each connection: `conn`, the `websockets` sans-I/O
`ServerProtocol` of the socket, and `app`, the ASGI application it runs; its transport
and flow control come from asyncio's own `Protocol` callbacks (`connection_made`,
`pause_writing`, `resume_writing`, `connection_lost`), which it overrides and passes on.
When a uvicorn upgrade renames those two attributes the extension is not offered (a
warning is logged once) and `tests/live/test_direct.py` fails.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import BaseTransport
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import WebSocketException
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import Protocol as WebsocketsProtocol
from websockets.protocol import State

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from ioc.live.protocol import Wire

log = logging.getLogger("ioc.live")

DIRECT_EXTENSION = "ioc.websocket.direct"
# With permessage-deflate negotiated, only messages this large are compressed (snapshots);
# deltas (~250 bytes) go as plain frames, shared by every screen (RFC 7692 §6: RSV1 unset).
COMPRESS_MIN_BYTES = 1024
# What `ioc serve`, the tests and the benchmark pass as uvicorn's `ws`: this module's class.
WS_IMPLEMENTATION = f"{__name__}:LiveWebSocketProtocol"


class DirectExtension(TypedDict):
    """The value of `scope["extensions"]["ioc.websocket.direct"]`."""

    write: Callable[[Wire], bool]
    abort: Callable[[], None]


_warned = False


class LiveWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol offering the `ioc.websocket.direct` extension."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._ioc_transport: asyncio.Transport | None = None
        self._ioc_paused = False
        self._ioc_lost = False
        # the largest message written as a plain frame, once the handshake fixed the
        # extensions: all without extensions; small ones with only permessage-deflate;
        # none with anything else
        self._ioc_plain_max: float | None = None
        conn = getattr(self, "conn", None)
        app = getattr(self, "app", None)
        if isinstance(conn, WebsocketsProtocol) and callable(app):
            self._ioc_conn: WebsocketsProtocol = conn
            self.app = self._with_extension(app)
        else:
            _warn_once()

    def _with_extension(self, app: Any) -> Any:
        extension: DirectExtension = {"write": self.ioc_write, "abort": self.ioc_abort}

        async def app_with_extension(scope: Any, receive: Any, send: Any) -> None:
            if scope.get("type") == "websocket":
                offered = scope.get("extensions") or {}
                scope["extensions"] = {**offered, DIRECT_EXTENSION: extension}
            await app(scope, receive, send)

        return app_with_extension

    # --- asyncio's protocol callbacks: the transport and its flow control

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        # (uvloop's transports do not derive from asyncio's classes: no isinstance here)
        self._ioc_transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self._ioc_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self._ioc_paused = False
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._ioc_lost = True
        super().connection_lost(exc)

    # --- the extension

    def ioc_write(self, wire: Wire) -> bool:
        """Write `wire` as one text message now (True), or nothing (False: use ASGI)."""
        conn = self._ioc_conn
        transport = self._ioc_transport
        if (
            self._ioc_paused
            or self._ioc_lost
            or transport is None
            or conn.state is not State.OPEN
            or transport.is_closing()
        ):
            return False
        plain_max = self._ioc_plain_max
        if plain_max is None:
            plain_max = self._ioc_plain_max = _plain_max(conn)
        try:
            if len(wire.data) <= plain_max:
                transport.write(wire.frame)
            else:
                conn.send_text(wire.data)
                transport.write(b"".join(conn.data_to_send()))
        except (OSError, RuntimeError, WebSocketException):
            # the socket is going away: the caller goes on to the other screens; the
            # message takes the ASGI path, which meets the same end and stops
            return False
        return True

    def ioc_abort(self) -> None:
        """Drop the TCP connection now (no close handshake)."""
        if self._ioc_transport is not None:
            self._ioc_transport.abort()


def _plain_max(conn: WebsocketsProtocol) -> float:
    extensions = conn.extensions
    if not extensions:
        return float("inf")
    if all(isinstance(e, PerMessageDeflate) for e in extensions):
        return COMPRESS_MIN_BYTES - 1
    return -1


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "live: uvicorn's websockets-sansio protocol has no `conn`/`app` as expected; "
            "screens are served through plain ASGI (slower fan-out)"
        )
