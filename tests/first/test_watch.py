"""`ioc watch --unit 689` as the README writes it: the demo's operator token without asking,
a clear message when there is none; KPI names, Vietnamese numbers, colour and a legend."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from ioc.live.client import ScreenState
from ioc.live.terminal import screen

from ..conftest import ServerMaker, TokenMaker


async def _watch(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ioc", "watch", "--unit", "689", *args,
        env={**os.environ, "COLUMNS": "160", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_watch_uses_the_demo_operator_token(
    make_server: ServerMaker, make_token: TokenMaker, tmp_path: Path
) -> None:
    server = await make_server()
    (tmp_path / "demo-tokens.json").write_text(
        json.dumps({"operator": await make_token("operator", "70"), "admin": "unused"})
    )
    env = {"IOC_DATA_DIR": str(tmp_path), "IOC_TOKEN": "", "IOC_PUBLIC_URL": server.url}
    code, out, err = await _watch(env, "--once")
    assert code == 0, err
    assert "using the demo's operator token" in err
    assert out.startswith("Đơn vị 689")
    assert "Tỷ lệ hồ sơ giải quyết đúng hạn" in out and "dossier_ontime_rate" not in out
    assert "Chú giải: ✓ đạt mục tiêu   ~ gần ngưỡng" in out


async def test_watch_without_a_token_says_which_one(tmp_path: Path) -> None:
    code, _, err = await _watch({"IOC_DATA_DIR": str(tmp_path), "IOC_TOKEN": ""}, "--once")
    assert code == 1
    assert "ioc watch needs a token that can read unit 689" in err
    assert "ioc token create --role operator --unit 689 --name watch-689" in err
    assert "Usage:" not in err  # not typer's exit 2


def test_screen_names_numbers_colours() -> None:
    state = ScreenState("689")
    state.kpis[("689", "today", "dossier_ontime_rate")] = {
        "id": "dossier_ontime_rate", "value": 0.889, "numerator": 8, "denominator": 9,
        "target": 0.95, "status": "bad",
    }  # fmt: skip
    state.kpis[("689", "today", "i766_3_3")] = {
        "id": "i766_3_3", "value": 0.5, "numerator": 1, "denominator": 2,
        "target": 0.5, "status": "ok",
    }  # fmt: skip
    state.kpis[("689", "today", "dossier_received")] = {
        "id": "dossier_received", "value": 1234, "numerator": None, "denominator": None,
        "target": None, "status": "none",
    }  # fmt: skip
    console = Console(width=140, force_terminal=True, color_system="standard")
    with console.capture() as captured:
        console.print(screen(state, ["today"]))
    ansi = captured.get()
    plain = Console(width=140, no_color=True)
    with plain.capture() as text_capture:
        plain.print(screen(state, ["today"]))
    text = text_capture.get()
    assert "Tỷ lệ hồ sơ giải quyết đúng hạn" in text
    assert "88,9% ✗" in text and "50% ✓" in text and "1.234" in text
    assert "0.889" not in text
    assert "\x1b[1;31m88,9% ✗" in ansi  # bold red
    assert "\x1b[32m  50% ✓" in ansi  # green (right-aligned inside its style)
