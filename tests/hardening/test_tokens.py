"""Tokens: hashed at rest, compared in constant time, revocation and expiry effective on open
websockets; websocket message size and rate limits; handshake rate limit."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import websockets

from ioc.auth import create_token, revoke_token
from ioc.auth import service as auth_service
from ioc.db import Database
from ioc.db.engine import asyncpg_dsn
from tests.conftest import RunningServer, ServerMaker, TokenMaker


async def test_tokens_are_hashed_at_rest_and_compared_in_constant_time(
    db: Database, database_url: str
) -> None:
    async with db.session() as session:
        secret, info = await create_token(session, name="at-rest", role="operator", unit_code="70")
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow("SELECT * FROM api_tokens WHERE id = $1", info.id)
    finally:
        await conn.close()
    assert bytes(row["token_hash"]) == hashlib.sha256(secret.encode()).digest()
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored and secret[10:] not in stored
    assert row["prefix"] == secret[:10]  # 4 + 6 characters: identifies, does not authenticate
    # The lookup is by hash (time independent of how much of the token matches) and the
    # final comparison is hmac.compare_digest.
    source = inspect.getsource(auth_service.principal_for_token)
    assert "compare_digest" in source and "token_hash = :h" in source


async def _subscribed(server: RunningServer, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(f"{server.ws_url}?token={token}", open_timeout=10)
    await ws.send(json.dumps({"type": "subscribe", "unit": "689", "windows": ["today"]}))
    first = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
    assert first["type"] == "snapshot"
    return ws


async def _closed(ws: websockets.ClientConnection) -> tuple[int | None, str | None, list[dict]]:
    """Read until the server closes; → (code, reason, error messages seen)."""
    errors = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            if message["type"] == "error":
                errors.append(message)
    return ws.close_code, ws.close_reason, errors


async def test_revocation_and_expiry_close_open_websockets(
    make_server: ServerMaker, db: Database
) -> None:
    server = await make_server(ws_auth_recheck_seconds=0.5)
    async with db.session() as session:
        revoked, info = await create_token(session, name="ws-rev", role="district", unit_code="689")
        expiring, _ = await create_token(
            session, name="ws-exp", role="district", unit_code="689",
            expires_at=datetime.now(UTC) + timedelta(seconds=8),
        )  # fmt: skip
    ws_expiring = await _subscribed(server, expiring)
    ws_revoked = await _subscribed(server, revoked)
    async with db.session() as session:
        await revoke_token(session, str(info.id))
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answer = await http.get("/api/v1/units/689", headers={"Authorization": f"Bearer {revoked}"})
        assert answer.status_code == 401  # HTTP: the very next request
    code, reason, _ = await _closed(ws_revoked)
    assert (code, reason) == (1008, "the token was revoked")
    code, _, _ = await _closed(ws_expiring)
    assert code == 1008
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{server.ws_url}?token={revoked}", open_timeout=10)
    assert refused.value.response.status_code == 401


async def test_revocation_closes_open_websockets_at_once(
    make_server: ServerMaker, db: Database
) -> None:
    # The periodic re-check is an hour away: only the revocation's NOTIFY can close it.
    server = await make_server(ws_auth_recheck_seconds=3600)
    async with db.session() as session:
        token, info = await create_token(session, name="ws-now", role="district", unit_code="689")
    ws = await _subscribed(server, token)
    async with db.session() as session:
        await revoke_token(session, info.prefix)
    code, reason, _ = await asyncio.wait_for(_closed(ws), timeout=15)
    assert (code, reason) == (1008, "the token was revoked")


async def test_websocket_message_size_and_rate_limits(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(ws_max_message_bytes=1024, ws_messages_burst=5)
    token = await make_token("district", "689")
    ws = await _subscribed(server, token)
    await ws.send(json.dumps({"type": "ping", "pad": "x" * 2000}))
    code, _, errors = await _closed(ws)
    assert code == 1009
    assert errors[-1]["status"] == 400
    ws = await _subscribed(server, token)  # the subscribe was message 1 of the burst of 5
    for _ in range(30):
        try:
            await ws.send(json.dumps({"type": "ping"}))
        except websockets.ConnectionClosed:
            break
    code, reason, _ = await _closed(ws)
    assert code == 1008
    assert reason == "more than 5 messages per second"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        metrics = (await http.get("/metrics")).text
    assert 'ioc_hardening_rejected_requests_total{reason="ws_messages"} ' in metrics


async def test_websocket_handshakes_are_rate_limited(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server(
        rate_limit_ws_handshakes_burst=2, rate_limit_ws_handshakes_per_second=0.01
    )
    token = await make_token("district", "689")
    for _ in range(2):
        ws = await websockets.connect(f"{server.ws_url}?token={token}", open_timeout=10)
        await ws.close()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{server.ws_url}?token={token}", open_timeout=10)
    assert refused.value.response.status_code == 429
    assert int(refused.value.response.headers["Retry-After"]) >= 90
