"""Hardening, round two (issue 22): what an outside attack found, kept fixed."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest
import structlog
import websockets
from fastapi import Request
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed

from ioc.alerts.models import RuleIn
from ioc.errors import Invalid
from ioc.kpis.models import TargetIn
from ioc.logs import configure
from ioc.webhooks import check_secret, signature_headers
from tests.conftest import ServerMaker, TokenMaker
from tests.conftest import test_settings as settings_for_tests
from tests.webhooks_reference import verify as reference_verify

PROBLEM = "application/problem+json"


# --- 7. non-finite numbers -----------------------------------------------------------------


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1.5e309"])
async def test_numbers_beyond_a_double_are_refused_for_targets_and_thresholds(
    make_server: ServerMaker, make_token: TokenMaker, literal: str
) -> None:
    """`1e400` is valid JSON that Python reads as Infinity; it used to be stored as a target
    and a threshold (then shown as null beside "Không đạt")."""
    server = await make_server()
    admin = {"Authorization": f"Bearer {await make_token('admin', None)}"}
    rule = {
        "name": "ngưỡng vô cực",
        "kpi": "dossier_ontime_rate",
        "unit": "689",
        "window": "month",
        "op": "<",
        "threshold": 0.9,
    }
    async with httpx.AsyncClient(base_url=server.url, headers=admin, timeout=10) as http:
        for method, path, body in (
            ("PUT", "/api/v1/kpis/targets/689/dossier_ontime_rate", f'{{"target": {literal}}}'),
            ("POST", "/api/v1/alert-rules", json.dumps(rule).replace("0.9", literal)),
        ):
            answer = await http.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 422, (path, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert literal in answer.json()["detail"]
        targets = await http.get("/api/v1/kpis/targets", params={"unit": "689"})
        assert targets.status_code == 200
        assert not [t for t in targets.json() if t["source"] == "unit"]  # nothing was stored
        assert (await http.get("/api/v1/alert-rules")).json() == []


def test_models_refuse_non_finite_numbers_whatever_the_caller() -> None:
    """The CLI and in-process callers get the same refusal as HTTP clients."""
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValidationError):
            TargetIn(target=bad)
        with pytest.raises(ValidationError):
            RuleIn(name="r", kpi="dossier_ontime_rate", unit="689", op="<", threshold=bad)


# --- 3. series bounds before work ----------------------------------------------------------


async def test_series_bounds_are_checked_before_any_work(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    """`from=0001-01-01&to=9999-12-31` once built 3.6 million periods (6–10 s, 128 MB) and
    /healthz waited meanwhile; it is now refused before anything is built."""
    server = await make_server()
    operator = {"Authorization": f"Bearer {await make_token('operator', '70')}"}
    worst = {"unit": "70", "from": "0001-01-01", "to": "9999-12-31"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for params, needle in (
            (worst, "outside the years 1900–2199"),
            ({**worst, "step": "month"}, "outside the years 1900–2199"),
            ({"unit": "70", "from": "1900-01-01", "to": "2199-12-31"}, "109573 steps asked"),
            ({"unit": "70", "from": "2199-12-01", "to": "9999-12-31"}, "9999-12-31 is outside"),
        ):
            answer = await http.get(
                "/api/v1/kpis/dossier_online_rate/series", params=params, headers=operator
            )
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"] == PROBLEM
            assert needle in answer.json()["detail"]

        async def series_storm() -> None:
            for _ in range(10):
                await http.get(
                    "/api/v1/kpis/report_response_p50_hours/series", params=worst, headers=operator
                )
                await http.get(  # the largest series allowed: 1,000 days of the province
                    "/api/v1/kpis/report_response_p50_hours/series",
                    params={"unit": "70", "from": "2024-01-01", "to": "2026-09-26"},
                    headers=operator,
                )

        async def health() -> list[float]:
            waits: list[float] = []
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as probe:
                for _ in range(20):
                    started = time.perf_counter()
                    assert (await probe.get("/healthz")).status_code == 200
                    waits.append(time.perf_counter() - started)
                    await asyncio.sleep(0.01)
            return waits

        storm = asyncio.create_task(series_storm())
        waits = await health()
        await storm
    assert statistics.median(waits) < 0.1, waits


# --- 5. deeply nested websocket messages ---------------------------------------------------


async def test_a_deeply_nested_message_is_closed_with_a_reason(
    make_server: ServerMaker, make_token: TokenMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """`"["*2000 + "]"*2000` (4 KB) raised RecursionError: the socket dropped without a close
    frame and the log took 170 KB. Now: an error message, a 1008 close with a reason, a
    short log, and the server goes on serving."""
    server = await make_server()
    token = await make_token("operator", "70")
    url = server.url.replace("http", "ws", 1) + "/ws"
    headers = {"Authorization": f"Bearer {token}"}
    caplog.set_level(logging.INFO)
    for hostile in ("[" * 2000 + "]" * 2000, '{"type": "subscribe", "x": ' + "{" * 40 + "}" * 41):
        async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
            await ws.send(hostile)
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert error["type"] == "error"
            assert "nested deeper than 16 levels" in json.dumps(error)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
            assert "nested deeper" in closed.value.rcvd.reason
    assert len(caplog.text) < 20_000
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "subscribe", "unit": "70", "windows": ["today"]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "snapshot"
    # brackets inside strings are text, not nesting
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "ping", "note": "[" * 100}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"


# --- 4. feed secrets every receiver can verify ---------------------------------------------


def _whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


async def test_only_standard_webhooks_secrets_are_accepted(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    """A brought secret that matched `whsec_[A-Za-z0-9+/=]{32,}` but was not base64 was
    accepted and signed with its raw text: the reference library could verify none of those
    deliveries. Only base64 of 24–64 bytes is accepted now; what is accepted verifies."""
    server = await make_server(feeds_enabled=False)
    district = {"Authorization": f"Bearer {await make_token('district', '689')}"}
    body = {"url": "http://127.0.0.1:9/hook", "unit": "689", "topics": ["kpi"]}
    refused = {
        "whsec_" + "A" * 33: "not valid base64",  # not a multiple of 4
        "whsec_QUJD=REVGR0hJSktMTU5PUFFSU1RVVldYWVo=": "not valid base64",  # padding inside
        _whsec(80): "80 bytes",
    }
    async with httpx.AsyncClient(base_url=server.url, headers=district, timeout=10) as http:
        for secret, why in refused.items():
            answer = await http.post("/api/v1/subscriptions", json={**body, "secret": secret})
            assert answer.status_code == 422, (secret, answer.text)
            assert why in answer.text
        for size in (24, 32, 64):
            answer = await http.post("/api/v1/subscriptions", json={**body, "secret": _whsec(size)})
            assert answer.status_code == 201, answer.text
            payload = b'{"type": "kpi", "seq": 1}'
            headers = signature_headers([_whsec(size)], "msg_1", payload)
            reference_verify(_whsec(size), headers, payload)  # ioc's and the library's
    for secret in refused:
        with pytest.raises(ValidationError):
            settings_for_tests(federation_secret=secret)
        with pytest.raises(Invalid):
            check_secret(secret)


# --- 1 and 8. an unexpected error: no secret in any log format, a short log, the connection
# kept ------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.parametrize("json_lines", [False, True], ids=["console", "json"])
async def test_an_unexpected_error_logs_no_secret_and_keeps_the_connection(
    make_server: ServerMaker,
    make_token: TokenMaker,
    capfd: pytest.CaptureFixture[str],
    restore_logging: None,
    json_lines: bool,
) -> None:
    """A bug inside a request used to be logged by the console renderer as a rich traceback
    whose locals held the request's headers: the bearer token 20 times and 632 KB for one
    request. Then Starlette re-raised it, and the server closed the keep-alive connection
    under the client's next request."""
    server = await make_server()
    token = await make_token("operator", "70")

    async def broken(request: Request) -> None:
        headers = list(request.headers.items()) * 50  # what a rich traceback would print
        rows = list(range(20_000))
        raise RuntimeError(f"a bug, holding {len(headers)} headers and {len(rows)} rows")

    server.app.add_api_route("/api/v1/test-broken", broken, methods=["GET"])
    configure("info", json=json_lines)
    capfd.readouterr()
    transport = httpx.AsyncHTTPTransport(retries=0)
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"},
        transport=transport,
        timeout=10,
    ) as http:
        answer = await http.get("/api/v1/test-broken")
        assert answer.status_code == 500
        assert answer.headers["content-type"] == PROBLEM
        assert "error id" in answer.json()["detail"]
        assert answer.headers.get("connection") != "close"
        again = await http.get("/api/v1/units/70")  # the same connection (one in the pool)
        assert again.status_code == 200
        assert again.extensions["network_stream"] is answer.extensions["network_stream"]
    log = capfd.readouterr().err
    assert "a bug, holding" in log  # the error is logged, with its traceback
    assert "Traceback" in log
    assert token not in log and token[4:20] not in log
    assert log.count("unexpected error") == 1
    assert len(log) < 20_000, len(log)


async def test_the_behaviour_agrees_with_the_description(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    """What schemathesis found (item 11), each asked directly: a 405 names the methods the
    route has; a bare number is not a date-time; an id beyond int64 is a 404/422, not a 500."""
    server = await make_server()
    admin = {"Authorization": f"Bearer {await make_token('admin', None)}"}
    async with httpx.AsyncClient(base_url=server.url, headers=admin, timeout=10) as http:
        wrong = await http.delete("/api/v1/kpis")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET"
        assert wrong.headers["content-type"] == PROBLEM
        both = await http.put("/api/v1/alert-rules/1")
        assert both.status_code == 405
        assert set(both.headers["allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}
        for since in ("0.5", "1700000000", "2026-12-01T08:00:00"):  # no offset: not a moment
            answer = await http.get("/api/v1/alerts/history", params={"unit": "70", "since": since})
            assert answer.status_code == 422, (since, answer.text)
            assert answer.headers["content-type"] == PROBLEM
        silence = {"unit": "689", "until": 0.5, "reason": "kiểm thử"}
        assert (await http.post("/api/v1/silences", json=silence)).status_code == 422
        for path in ("/api/v1/alerts/{}", "/api/v1/alert-rules/{}"):
            for ident in (str(2**63), str(2**64 + 5), "-1"):
                answer = await http.get(path.format(ident))
                assert answer.status_code in (404, 422), (path, ident, answer.text)
                assert answer.headers["content-type"] == PROBLEM
