"""Input limits answer 413/422/400 problem+json before any route runs, never 500."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import ServerMaker, TokenMaker

PROBLEM = "application/problem+json"
# Any JSON POST goes through the limits before routing; this route answers 405 when the
# body passes, which proves the limit (not the route) produced the refusals below.
TARGET = "/api/v1/units/70"


async def test_declared_body_over_limit_is_413(make_server: ServerMaker) -> None:
    server = await make_server(ingest_max_body_bytes=4096)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        big = await http.post(
            TARGET,
            content=b"[" + b"1," * 3000 + b"1]",
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413
        assert big.headers["content-type"] == PROBLEM
        assert big.json()["status"] == 413
        assert "4096 bytes" in big.json()["detail"]
        small = await http.post(
            TARGET, content=b"[1, 2]", headers={"content-type": "application/json"}
        )
        assert small.status_code == 405


async def test_xml_has_its_own_smaller_limit(make_server: ServerMaker) -> None:
    server = await make_server(ingest_max_body_bytes=1024 * 1024, xml_max_bytes=2048)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        body = b"<a>" + b"x" * 4000 + b"</a>"
        refused = await http.post(TARGET, content=body, headers={"content-type": "application/xml"})
        assert refused.status_code == 413
        assert "2048 bytes" in refused.json()["detail"]


async def _raw_chunked(port: int, chunks: int, chunk_size: int) -> tuple[str, int]:
    """Stream a chunked JSON body; stop as soon as the server answers. → (status line, sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {TARGET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    sent = 0
    status = ""
    try:
        writer.write(b"1\r\n[\r\n")
        for _ in range(chunks):
            payload = b"1," * (chunk_size // 2)
            writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            sent += len(payload)
            await writer.drain()
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=0.02)
            except TimeoutError:
                continue
            status = line.decode().strip()
            break
        if not status:
            status = (await asyncio.wait_for(reader.readline(), timeout=10)).decode().strip()
    except (ConnectionResetError, BrokenPipeError):
        status = status or "reset"
    finally:
        writer.close()
    return status, sent


async def test_chunked_body_is_cut_off_while_streaming(make_server: ServerMaker) -> None:
    server = await make_server(ingest_max_body_bytes=64 * 1024)
    # 4096 chunks of 4 KiB would be 16 MiB; the server must answer long before.
    status, sent = await _raw_chunked(server.port, chunks=4096, chunk_size=4096)
    assert status == "HTTP/1.1 413 Request Entity Too Large" or status.startswith("HTTP/1.1 413")
    assert sent < 2 * 1024 * 1024


async def test_json_shape_limits(make_server: ServerMaker) -> None:
    server = await make_server(
        json_max_depth=8,
        json_max_array=100,
        ingest_max_records=50,
        json_max_string_chars=1000,
        json_max_object_keys=20,
    )
    cases: list[tuple[bytes, int, str]] = [
        (b"[" * 9 + b"]" * 9, 422, "json-too-deep"),
        (b"[" * 200_000 + b"]" * 200_000, 422, "json-too-deep"),  # C parser recursion guard
        (json.dumps(list(range(101))).encode(), 422, "json-array-too-long"),
        (json.dumps({"title": "é" * 1001}).encode(), 422, "json-string-too-long"),
        (json.dumps({f"k{i}": i for i in range(21)}).encode(), 422, "json-object-too-large"),
        (b'{"name": "a\\u0000b"}', 422, "invalid-text"),
        (b'{"name": "\\ud800"}', 422, "invalid-text"),
        (b'{"value": NaN}', 400, "json-malformed"),
        (b'{"value": 1', 400, "json-malformed"),
        (b'"\xff\xfe"', 400, "json-malformed"),
        (b"[" + b"9" * 5000 + b"]", 400, "json-malformed"),  # int digits limit
    ]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for body, status, slug in cases:
            answer = await http.post(
                TARGET, content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == status, (body[:40], answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.json()["type"] == f"/problems/{slug}", (body[:40], answer.json())
        fine = [
            b"[" * 8 + b"]" * 8,
            json.dumps(list(range(100))).encode(),
            json.dumps({"title": "Nguyễn " * 100, "emoji": "\ud83d\ude00"}).encode(),
            b'{"pair": "\\ud83d\\ude00"}',
        ]
        for body in fine:
            answer = await http.post(
                TARGET, content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 405, (body[:40], answer.text)
        assert (await http.get("/healthz")).status_code == 200


async def test_rate_limit_per_token_answers_429_with_retry_after(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(rate_limit_api_burst=3, rate_limit_api_per_second=0.01)
    first = {"Authorization": f"Bearer {await make_token('district', '689')}"}
    second = {"Authorization": f"Bearer {await make_token('district', '689')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for _ in range(3):
            assert (await http.get("/api/v1/units/689", headers=first)).status_code == 200
        refused = await http.get("/api/v1/units/689", headers=first)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"] == "/problems/rate-limited"
        assert 90 <= int(refused.headers["retry-after"]) <= 100
        # Another token has its own bucket; probes are never limited.
        assert (await http.get("/api/v1/units/689", headers=second)).status_code == 200
        for _ in range(5):
            assert (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'ioc_hardening_rejected_requests_total{reason="rate_api"}' in metrics


async def test_ingest_has_its_own_bucket(make_server: ServerMaker, make_token: TokenMaker) -> None:
    server = await make_server(rate_limit_ingest_burst=2, rate_limit_ingest_per_second=0.01)
    headers = {
        "Authorization": f"Bearer {await make_token('collector', '70')}",
        "content-type": "application/json",
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        codes = [
            (await http.post("/api/v1/ingest/reports", content=b"[]", headers=headers)).status_code
            for _ in range(3)
        ]
        assert codes[:2] != [429, 429] and codes[2] == 429
        # The API bucket of the same token is untouched.
        assert (await http.get("/api/v1/units/70", headers=headers)).status_code == 403


async def test_ids_beyond_bigint_are_422_not_500(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server()
    headers = {"Authorization": f"Bearer {await make_token('admin', None)}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for path in (
            "/api/v1/alert-rules/109526733929348038656",
            "/api/v1/alerts/-99999999999999999999",
        ):
            answer = await http.get(path, headers=headers)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.headers["content-type"] == PROBLEM
