"""The direct write: `ioc.live.server`'s uvicorn protocol offers `ioc.websocket.direct` in the
scope, writes whole frames only when ASGI would not wait, and without it (another server)
screens are served through plain ASGI, just slower."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

import tests.conftest
from ioc.db import Database
from ioc.live import WS_IMPLEMENTATION, Hub
from ioc.live.connection import ScreenConnection
from ioc.live.protocol import Wire, dumps
from ioc.live.server import COMPRESS_MIN_BYTES, DIRECT_EXTENSION, LiveWebSocketProtocol
from tests.conftest import ServerMaker, free_port
from tests.live.conftest import alert_event, connect, emit, recv, subscribe, token_for

# --- the protocol alone: a fake transport, a sans-I/O client, a tiny ASGI app


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.aborted = self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.written)
        self.written.clear()
        return data


@dataclass
class Socket:
    """One websocket handled by `LiveWebSocketProtocol`, with the app's side and a client."""

    protocol: LiveWebSocketProtocol
    transport: FakeTransport
    client: ClientProtocol
    scope: dict[str, Any]
    close: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def extension(self) -> dict[str, Any]:
        extension: dict[str, Any] = self.scope["extensions"][DIRECT_EXTENSION]
        return extension

    def write(self, text: str) -> bool:
        ok: bool = self.extension["write"](Wire(text))
        return ok

    def received(self) -> list[Frame]:
        """What the client decodes from the bytes written since the last call."""
        self.client.receive_data(self.transport.take())
        return [e for e in self.client.events_received() if isinstance(e, Frame)]


@pytest.fixture
def open_socket() -> Any:
    tasks: list[asyncio.Task[None]] = []

    async def make(*, deflate: bool = False, accept: bool = True) -> Socket:
        scopes: list[dict[str, Any]] = []
        close = asyncio.Event()
        accepted = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scopes.append(scope)
            assert (await receive())["type"] == "websocket.connect"
            if accept:
                await send({"type": "websocket.accept"})
            accepted.set()
            await close.wait()
            await send({"type": "websocket.close", "code": 1000})

        config = uvicorn.Config(
            app, ws=WS_IMPLEMENTATION, ws_per_message_deflate=deflate, ws_ping_interval=None
        )
        config.load()
        protocol = LiveWebSocketProtocol(config, ServerState(), {})
        transport = FakeTransport()
        protocol.connection_made(transport)
        client = ClientProtocol(
            parse_uri("ws://127.0.0.1:8000/ws"),
            extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
        )
        client.send_request(client.connect())
        protocol.data_received(b"".join(client.data_to_send()))
        await asyncio.wait_for(accepted.wait(), 5)
        tasks.extend(protocol.tasks)
        sock = Socket(protocol, transport, client, scopes[0], close)
        if accept:
            client.receive_data(transport.take())
            [response] = client.events_received()
            assert isinstance(response, Response) and response.status_code == 101
        return sock

    yield make
    for task in tasks:
        task.cancel()


async def test_the_protocol_offers_the_extension_and_writes_the_shared_frame(
    open_socket: Any,
) -> None:
    sock: Socket = await open_socket()
    assert set(sock.extension) == {"write", "abort"}
    wire = Wire(dumps({"type": "kpi", "seq": 1, "unit": "70", "kpi": {"id": "x"}}))
    assert sock.extension["write"](wire)
    assert sock.transport.written == wire.frame  # the frame built once, as is
    [frame] = sock.received()
    assert (frame.opcode, frame.data.decode()) == (Opcode.TEXT, wire.text)


async def test_nothing_is_written_before_accept(open_socket: Any) -> None:
    sock: Socket = await open_socket(accept=False)
    sock.transport.take()
    assert not sock.write('{"type":"ping","seq":1}')
    assert sock.transport.written == b""


async def test_nothing_is_written_while_paused_and_writes_resume_after(
    open_socket: Any,
) -> None:
    sock: Socket = await open_socket()
    sock.protocol.pause_writing()  # the transport's buffer is above its high-water mark
    assert not sock.write('{"type":"ping","seq":1}')
    assert sock.transport.written == b""
    sock.protocol.resume_writing()
    assert sock.write('{"type":"ping","seq":2}')
    assert [f.data for f in sock.received()] == [b'{"type":"ping","seq":2}']


async def test_nothing_is_written_once_closing_or_lost(open_socket: Any) -> None:
    sock: Socket = await open_socket()
    sock.close.set()  # the app sends websocket.close
    for _ in range(100):
        if sock.transport.written:
            break
        await asyncio.sleep(0.01)
    [close] = sock.received()
    assert close.opcode == Opcode.CLOSE
    assert not sock.write('{"type":"ping","seq":1}')
    assert sock.transport.written == b""

    other: Socket = await open_socket()
    other.transport.closing = True
    assert not other.write('{"type":"ping","seq":1}')
    other.transport.closing = False
    other.protocol.connection_lost(None)
    assert not other.write('{"type":"ping","seq":1}')
    assert other.transport.written == b""


async def test_with_deflate_small_messages_are_plain_frames_and_large_ones_compressed(
    open_socket: Any,
) -> None:
    sock: Socket = await open_socket(deflate=True)
    small = Wire(dumps({"type": "kpi", "seq": 1, "kpi": {"id": "x"}}))
    large = Wire(dumps({"type": "snapshot", "seq": 1, "pad": "y" * COMPRESS_MIN_BYTES}))
    assert sock.extension["write"](small)
    assert sock.transport.written == small.frame  # RSV1 unset: shared with every screen
    assert [f.data.decode() for f in sock.received()] == [small.text]
    assert sock.extension["write"](large)
    raw = bytes(sock.transport.written)
    assert raw[0] & 0x40 and len(raw) < len(large.data)  # RSV1: compressed
    assert [f.data.decode() for f in sock.received()] == [large.text]
    assert sock.extension["write"](small)  # the compressor's context is not disturbed
    assert sock.extension["write"](large)
    assert [f.data.decode() for f in sock.received()] == [small.text, large.text]


async def test_abort_drops_the_transport(open_socket: Any) -> None:
    sock: Socket = await open_socket()
    sock.extension["abort"]()
    assert sock.transport.aborted
    assert not sock.write('{"type":"ping","seq":1}')


# --- real servers


def serve_one_screen_under_uvloop() -> tuple[list[bool], str, str]:
    """uvicorn with this protocol on uvloop (as `ioc serve` runs): one socket, one direct
    write. (uvloop's transports are not `asyncio.Transport`s: nothing may depend on that.)"""
    import uvloop
    import websockets

    results: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        write = scope["extensions"][DIRECT_EXTENSION]["write"]
        wire = Wire('{"type":"ping","seq":7}')
        results.append(write(wire))
        if not results[-1]:  # (so that the test fails on its assertion, not a timeout)
            await send({"type": "websocket.send", "text": wire.text})
        await receive()  # until the client goes

    async def main() -> tuple[list[bool], str, str]:
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ws=WS_IMPLEMENTATION,
            lifespan="off",
            log_config=None,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        async with websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=10) as ws:
            got = await asyncio.wait_for(ws.recv(), 10)
        server.should_exit = True
        await task
        return results, str(got), type(asyncio.get_running_loop()).__module__

    return uvloop.run(main())


async def test_the_direct_write_works_under_uvloop() -> None:
    results, got, loop = await asyncio.to_thread(serve_one_screen_under_uvloop)
    assert loop.startswith("uvloop")
    assert results == [True] and got == '{"type":"ping","seq":7}'


async def test_without_the_extension_screens_are_served_through_asgi(
    live_server: ServerMaker, live_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under uvicorn's plain `websockets-sansio` (or any other server) there is no direct
    writer: everything still arrives, through the queue and the ASGI `send`."""
    monkeypatch.setattr(tests.conftest, "WS_IMPLEMENTATION", "websockets-sansio")
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    hub = server.app.state.ctx.handles.get(Hub)
    async with await connect(server.ws_url, token) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        [conn] = list(hub.connections)
        assert conn.sink is None and conn._abort_transport is None
        seqs = await emit(live_db, *[alert_event("689", f"plain{i}") for i in range(20)])
        assert [(await recv(ws))["seq"] for _ in seqs] == seqs


@dataclass
class Counting:
    """Wraps a screen's direct writer: what it wrote, what it refused."""

    inner: Any
    written: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)

    def __call__(self, wire: Wire) -> bool:
        ok: bool = self.inner(wire)
        (self.written if ok else self.refused).append(len(wire.data))
        return ok


@pytest.fixture
async def lagging(live_server: ServerMaker, live_db: Database) -> AsyncIterator[Any]:
    server = await live_server(ws_send_timeout_seconds=60)  # lagging, not stuck
    token = await token_for(live_db, "district", "689")
    # max_queue=1: the client stops reading after one message; a smaller receive buffer
    # makes the kernel stop accepting sooner
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    ws = await connect(server.ws_url, token, max_queue=1, sock=sock, ping_interval=None)
    await subscribe(ws, "689", ["today"])
    assert (await recv(ws))["type"] == "snapshot"
    [conn] = list(server.app.state.ctx.handles.get(Hub).connections)
    yield ws, conn
    await ws.close()


async def test_a_slow_screen_is_not_written_directly_and_gets_everything_in_order(
    lagging: Any, live_db: Database
) -> None:
    ws, conn = lagging
    assert isinstance(conn, ScreenConnection) and conn.sink is not None
    counting = conn.sink = Counting(conn.sink)
    published: list[int] = []
    pad = "x" * 32_000
    # (bounded: 800 messages, below the queue's 1,024; the kernel's buffers on 127.0.0.1
    # take a few MB before the transport pauses)
    for batch in range(40):
        published += await emit(
            live_db, *[alert_event("689", f"slow{batch}-{i}-{pad}") for i in range(20)]
        )
        await asyncio.sleep(0.05)
        if counting.refused:
            break
    assert counting.refused, "the screen's socket never paused"
    assert conn.queue or conn.sending_since is not None  # the rest waits for the socket
    got = [(await recv(ws))["seq"] for _ in published]
    assert got == published  # every event, in order, no resync
    # caught up: written directly again
    before = len(counting.written)
    [seq] = await emit(live_db, alert_event("689", "after"))
    assert (await recv(ws))["seq"] == seq
    assert len(counting.written) == before + 1
