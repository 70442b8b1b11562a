"""An oversized batch is refused with a 413 the client can read, even when it writes its
whole body before reading (as httpx, requests and most source systems do)."""

from __future__ import annotations

import asyncio

import httpx

from ..conftest import ServerMaker, TokenMaker
from .conftest import auth

LIMIT = 64 * 1024
BIG = 8 * 1024 * 1024  # far over the limit and over any socket buffer


async def test_declared_oversized_batch_gets_a_readable_413(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(ingest_max_body_bytes=LIMIT)
    token = await make_token("collector", "70")
    body = b"[" + b'{"MaHoSo": "X"},' * (BIG // 16) + b"{}]"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.post(
            "/api/v1/ingest/dossiers",
            content=body,
            headers={**auth(token), "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert f"the limit of {LIMIT} bytes" in r.json()["detail"]
        # the connection stays usable: the same client goes on with a small batch
        r = await http.post("/api/v1/ingest/dossiers", json=[], headers=auth(token))
        assert r.status_code == 200


async def _send_all_then_read(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """A source system that writes its whole request before reading the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout=10)
    finally:
        writer.close()


async def test_chunked_oversized_batch_gets_a_readable_413(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(ingest_max_body_bytes=LIMIT)
    token = await make_token("collector", "70")
    chunk = b"1," * 32 * 1024
    parts = [b"1\r\n[\r\n"]
    parts += [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * (BIG // len(chunk))
    parts += [b"2\r\n1]\r\n0\r\n\r\n"]
    head = (
        "POST /api/v1/ingest/dossiers HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer = await _send_all_then_read(server.port, head, parts)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"application/problem+json" in answer and b"send smaller batches" in answer


async def test_oversized_xml_gets_a_readable_413(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(xml_max_bytes=LIMIT)
    token = await make_token("collector", "70")
    body = b"<a>" + b"x" * BIG + b"</a>"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.post(
            "/api/v1/ingest/documents",
            content=body,
            headers={**auth(token), "Content-Type": "application/xml"},
        )
    assert r.status_code == 413
    assert f"{LIMIT} bytes" in r.json()["detail"]
