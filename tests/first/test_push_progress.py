"""`ioc simulate --push` shows its progress (issue 19): the backfill with its size, then a
running count — as plain lines on stderr when not on a terminal."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest

from ..conftest import ServerMaker, TokenMaker


@pytest.mark.slow
async def test_simulate_push_reports_the_backfill(
    make_server: ServerMaker, make_token: TokenMaker
) -> None:
    server = await make_server()
    token = await make_token("collector", "70", name="sim-push-progress")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ioc", "simulate", "--push", server.url, "--token", token,
        "--backfill-days", "0.02", "--rate", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            assert proc.stderr is not None
            while not (lines and lines[-1].endswith("(100%)")):
                raw = await proc.stderr.readline()
                assert raw, f"simulate ended: {lines}"
                lines.append(raw.decode().rstrip("\n"))
    finally:
        proc.terminate()
        await proc.wait()
    backfill = [x for x in lines if x.startswith("simulate: backfill ")]
    assert backfill, lines
    match = re.fullmatch(r"simulate: backfill (\d+)/(\d+) \(100%\)", backfill[-1])
    assert match and match[1] == match[2] and int(match[1]) > 0
