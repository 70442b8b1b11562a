"""benchmarks/run_all.py turns the benchmarks' output into docs/performance.md (no timing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.tools import missing

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module
    spec.loader.exec_module(module)
    return module


LIVE_OUTPUT = """# cores: 2  load: 3.0  rate: 10.0/s
ioc[100].connected: 100 screens
ioc[100].latency_p50: 12.5 ms
ioc[100].latency_p99: 30.0 ms
bare[100].latency_p50: 2.0 ms
bare[100].latency_p99: 6.0 ms
ioc[1000].latency_p50: 40.0 ms
ioc[1000].latency_p99: 95.5 ms
"""


def test_text_figures_and_bench_json(run_all: ModuleType) -> None:
    figures, _ = run_all.parse_output("pipeline: 1,220 records/s\nratio = 0.25 x\n")
    assert figures == {"pipeline": (1220.0, "records/s"), "ratio": (0.25, "x")}
    structured = 'noise: 3 s\nBENCH_JSON {"figures": {"HTTP push": [366, "records/s"]}}\n'
    figures, _ = run_all.parse_output(structured)
    assert figures == {"HTTP push": (366.0, "records/s")}


def test_live_lines_become_curves(run_all: ModuleType) -> None:
    live = next(b for b in run_all.BENCHMARKS if b.name == "live")
    result = run_all.Result(live, "ok", stdout=LIVE_OUTPUT)
    curves = run_all.screens_series([result])
    assert curves == {
        "live.py ioc": {
            100: {"p50_ms": 12.5, "p99_ms": 30.0},
            1000: {"p50_ms": 40.0, "p99_ms": 95.5},
        },
        "live.py bare": {100: {"p50_ms": 2.0, "p99_ms": 6.0}},
    }


def test_report_has_machine_baselines_ratios_and_outputs(
    run_all: ModuleType, tmp_path: Path
) -> None:
    ingest = next(b for b in run_all.BENCHMARKS if b.name == "ingest")
    result = run_all.Result(ingest, "ok", 12.0, "pipeline: 50,000 records/s\n")
    result.figures, _ = run_all.parse_output(result.stdout)
    missing = run_all.Result(run_all.BENCHMARKS[-1], "missing")
    curves = {
        "ioc": {10: {"p50_ms": 4.0, "p99_ms": 10.0, "received": 200, "expected": 200}},
        "bare websockets": {10: {"p50_ms": 1.0, "p99_ms": 2.5}},
    }
    baselines = {
        "copy_rows": 1000,
        "copy_rows_per_s": 200_000.0,
        "broadcast": curves["bare websockets"],
    }
    out = tmp_path / "performance.md"
    info = {"CPU": "test CPU, 2 logical CPUs", "PostgreSQL": "15.20"}
    run_all.write_report(out, info, [result, missing], baselines, curves, "p.png", True)
    text = out.read_text()
    assert "| CPU | test CPU, 2 logical CPUs |" in text
    assert "| bare asyncpg COPY into a temp table, 1,000 rows | 200,000 rows/s |" in text
    assert "- pipeline: 25.00% of bare COPY" in text
    assert "| 10 | 4.0 ms | 10.0 ms | 200/200 | 1.0 ms | 2.5 ms | 4.0× |" in text
    assert "![latency vs screens](p.png)" in text
    assert f"`benchmarks/{missing.bench.script}` does not exist yet: not run." in text
    assert "pipeline: 50,000 records/s" in text  # the benchmark's own output, verbatim


def test_plot_writes_a_png(run_all: ModuleType, tmp_path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        missing("the `bench` extra (matplotlib) is not installed: pip install -e '.[bench]'")
    path = tmp_path / "screens.png"
    curve = {10: {"p50_ms": 1.0, "p99_ms": 3.0}, 100: {"p50_ms": 5.0, "p99_ms": 9.0}}
    assert run_all.plot(path, {"ioc": curve}) is True
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
