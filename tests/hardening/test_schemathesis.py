"""Property-based API testing with schemathesis, against a real `ioc serve` process.

Every operation of the OpenAPI schema gets a bounded number of generated requests, sent
with an admin token (which may call everything, so the handlers run rather than stopping at
the role check) and without a token; the checks: no 5xx, and every documented response
conforms to its schema. Requests go over HTTP to a separate process, so the (blocking)
schemathesis client never stalls the server. (Run with the whole room: `pytest tests/hardening`.)
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.conftest import DatabaseFactory
from tests.hardening.test_process import Served, _tokens, start_serve

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 5
# Failures found by this test in other rooms, reported to their owners: (method, path).
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
async def api(
    databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    url = await databases.create()
    tokens = await _tokens(url)
    log = tmp_path_factory.mktemp("schemathesis") / "serve.log"
    served = await start_serve(
        url, log, tokens, IOC_RATE_LIMIT_ENABLED="false", IOC_FEDERATION_SECRET="whsec_" + "A" * 44
    )
    yield served
    served.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(served.proc.wait(), timeout=30)
    except TimeoutError:
        served.proc.kill()


def _run_operation(operation: Any, base_url: str, headers: dict[str, str]) -> list[str]:
    """Generate and send EXAMPLES_PER_OPERATION cases; return the failures found."""
    failures: list[str] = []
    load_all_checks()
    every_check = list(CHECKS.get_all())
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, anonymous=st.booleans())
    def check(case: Any, anonymous: bool) -> None:
        try:
            case.call_and_validate(
                base_url=base_url,
                headers={} if anonymous else headers,
                checks=every_check,
                timeout=30,
            )
        except (Exception, BaseExceptionGroup) as exc:  # a check failed: note it, go on
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1200]}")

    check()
    return failures


async def test_api_against_its_schema(api: Served) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        raw = (await http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw)
    headers = api.auth("admin")
    failures: dict[tuple[str, str], list[str]] = {}
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        # Run in this thread, blocking the loop on purpose: the server is another process,
        # and hypothesis in a worker thread trips a CPython 3.11 AST recursion check.
        found = _run_operation(operation, api.url, headers)
        ran += 1
        if found:
            failures[key] = found
    assert ran >= 10
    unexpected = {k: v for k, v in failures.items() if k not in KNOWN_FAILURES}
    assert not unexpected, "\n".join(f"{k}: {v[0]}" for k, v in unexpected.items())
    log = Path(api.log).read_text(encoding="utf-8")
    assert api.tokens["admin"] not in log
