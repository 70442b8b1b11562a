"""permessage-deflate, when a screen negotiates it: only large messages (snapshots) are
compressed; deltas go as plain frames (RFC 7692 §6), and clients decode both."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib

import websockets
from websockets.frames import Frame, Opcode

from ioc.db import Database
from tests.conftest import ServerMaker
from tests.live.conftest import emit, kpi_event, recv, subscribe, token_for


async def read_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    """One unmasked server frame: (RSV1 set, opcode, payload)."""
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return bool(head[0] & 0x40), head[0] & 0x0F, await reader.readexactly(length)


async def test_with_deflate_only_snapshots_are_compressed(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()  # the test server negotiates deflate when asked (uvicorn)
    token = await token_for(live_db, "district", "689")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        response = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        assert response.startswith("http/1.1 101")
        assert "permessage-deflate" in response
        subscribe_text = json.dumps({"type": "subscribe", "unit": "689", "windows": ["today"]})
        writer.write(Frame(Opcode.TEXT, subscribe_text.encode()).serialize(mask=True))
        # the snapshot: compressed (RSV1), raw deflate ending without its sync tail
        rsv1, opcode, payload = await asyncio.wait_for(read_frame(reader), 30)
        assert (rsv1, opcode) == (True, Opcode.TEXT.value)
        snapshot = json.loads(zlib.decompressobj(wbits=-15).decompress(payload + b"\0\0\xff\xff"))
        assert snapshot["type"] == "snapshot" and snapshot["unit"] == "689"
        # a delta: a plain frame, readable as is
        [seq] = await emit(live_db, kpi_event("689", "today", "dossier_received", 3))
        while True:
            rsv1, opcode, payload = await asyncio.wait_for(read_frame(reader), 30)
            if opcode == Opcode.TEXT.value:
                break
        assert not rsv1
        delta = json.loads(payload)
        assert (delta["type"], delta["seq"], delta["kpi"]["value"]) == ("kpi", seq, 3)
    finally:
        writer.close()


async def test_a_deflate_client_decodes_snapshots_and_deltas(
    live_server: ServerMaker, live_db: Database
) -> None:
    server = await live_server()
    token = await token_for(live_db, "district", "689")
    async with websockets.connect(
        server.ws_url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression="deflate",
        open_timeout=10,
    ) as ws:
        await subscribe(ws, "689", ["today"])
        assert (await recv(ws))["type"] == "snapshot"
        seqs = await emit(
            live_db, *[kpi_event("689", "today", "dossier_received", v) for v in range(3)]
        )
        assert [(await recv(ws))["seq"] for _ in seqs] == seqs
