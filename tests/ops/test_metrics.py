"""Metrics audit: /metrics of a running server parses, follows Prometheus naming, carries
the families the operations issue asks for, and is scraped by a real Prometheus."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningServer, ServerMaker, free_port
from tests.tools import require_tool

NAME = re.compile(r"^ioc_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
# Durations are histograms (or gauges) in seconds, sizes in bytes: never ms, never minutes.
TIME_WORDS = re.compile(r"(latency|duration|delay|lag|age|elapsed|wait)")
BAD_UNITS = re.compile(r"_(ms|milliseconds|millis|minutes|hours|days|kb|mb|percent)(_|$)")


async def scrape(server: RunningServer) -> tuple[str, dict[str, Metric]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        await http.get("/healthz")  # so the HTTP families have at least one sample
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    return response.text, families


def naming_problems(families: dict[str, Metric]) -> list[str]:
    """Every departure from https://prometheus.io/docs/practices/naming/ in our families."""
    problems = []
    for family in families.values():
        name = family.name  # the parser strips a counter's _total
        if not name.startswith("ioc_"):
            continue
        if name.endswith("_created") and family.type == "gauge":
            continue  # prometheus-client's creation timestamps of counters and histograms
        if not NAME.match(name):
            problems.append(f"{name}: not snake_case with the ioc_ prefix")
        if not family.documentation.strip():
            problems.append(f"{name}: no HELP text")
        if BAD_UNITS.search(name):
            problems.append(f"{name}: use base units (seconds, bytes, ratio)")
        if family.type == "counter":
            if not all(s.name.endswith(("_total", "_created")) for s in family.samples):
                problems.append(f"{name}: counter samples must end in _total")
        elif name.endswith("_total"):
            problems.append(f"{name}: only counters end in _total ({family.type})")
        timed = TIME_WORDS.search(name) and not name.endswith("_seconds")
        if family.type in ("histogram", "summary") and timed:
            problems.append(f"{name}: a duration {family.type} must end in _seconds")
        if family.type == "gauge" and TIME_WORDS.search(name) and not name.endswith("_seconds"):
            problems.append(f"{name}: a duration gauge must end in _seconds")
        for sample in family.samples:
            for label in sample.labels:
                if not LABEL.match(label) or label.startswith("__"):
                    problems.append(f"{name}: label {label!r} is not snake_case")
    return sorted(set(problems))


async def test_metrics_parse_and_follow_prometheus_naming(make_server: ServerMaker) -> None:
    server = await make_server()
    _, families = await scrape(server)
    ours = [n for n in families if n.startswith("ioc_")]
    assert len(ours) >= 5
    assert naming_problems(families) == []
    requests = families["ioc_http_requests"]
    assert requests.type == "counter"
    healthz = [s for s in requests.samples if s.labels.get("route") == "/healthz"]
    assert healthz and healthz[0].value >= 1
    assert families["ioc_db_pool_size"].samples[0].value == 10


async def test_promtool_lints_the_exposition(make_server: ServerMaker) -> None:
    promtool = require_tool("promtool", "prometheus")
    server = await make_server()
    text, _ = await scrape(server)
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == ""


@dataclass(frozen=True)
class Expected:
    """A family the operations issue asks for, by exact name, type and labels."""

    what: str
    name: str
    type: str
    labels: frozenset[str] = frozenset()


def _labels(*names: str) -> frozenset[str]:
    return frozenset(names)


# What issue 10 lists, as the rooms named them. The label sets are what dashboards and
# alerting rules in deploy/ query; a rename must change both.
REQUIRED: tuple[Expected, ...] = (
    Expected("HTTP requests", "ioc_http_requests", "counter", _labels("method", "route", "status")),
    Expected(
        "HTTP latency", "ioc_http_request_duration_seconds", "histogram", _labels("method", "route")
    ),
    Expected("service rounds", "ioc_service_runs", "counter", _labels("service", "outcome")),
    Expected("lease holder", "ioc_service_lease_held", "gauge", _labels("service")),
    Expected("DB pool in use", "ioc_db_pool_checked_out", "gauge"),
    Expected("DB pool size", "ioc_db_pool_size", "gauge"),
    Expected(
        "ingest records and rejections by source and feed",
        "ioc_ingest_records",
        "counter",
        _labels("source", "feed", "outcome"),
    ),
    Expected("batch latency", "ioc_ingest_batch_duration_seconds", "histogram", _labels("feed")),
    Expected("collector lag", "ioc_collector_lag_seconds", "gauge", _labels("source")),
    Expected(
        "collector failures", "ioc_collector_consecutive_failures", "gauge", _labels("source")
    ),
    Expected("collector fetches", "ioc_collector_fetches", "counter", _labels("source", "outcome")),
    Expected("websocket connections", "ioc_live_clients", "gauge"),
    Expected("websocket messages sent", "ioc_live_messages_sent", "counter", _labels("type")),
    Expected("websocket events dropped", "ioc_live_events_dropped", "counter", _labels("reason")),
    Expected("alert states", "ioc_alerts_alerts", "gauge", _labels("state")),
    Expected(
        "notification outcomes",
        "ioc_alerts_notifications",
        "counter",
        _labels("channel", "outcome"),
    ),
    Expected("webhook deliveries", "ioc_feeds_deliveries", "counter", _labels("outcome")),
    Expected("webhook latency", "ioc_feeds_delivery_duration_seconds", "histogram"),
    Expected("webhook failures", "ioc_feeds_failing", "counter"),
    Expected("KPI values", "ioc_kpi_value", "gauge", _labels("kpi", "unit", "window")),
)


def declared_labels() -> dict[str, frozenset[str]]:
    """Label names of every metric object in ioc.metrics (a family with no sample yet shows
    no labels in the exposition, so they are read where they are declared)."""
    from prometheus_client.metrics import MetricWrapperBase

    import ioc.metrics

    found = {}
    for value in vars(ioc.metrics).values():
        if isinstance(value, MetricWrapperBase):
            found[value._name] = frozenset(value._labelnames)
    return found


def missing_families(
    families: dict[str, Metric], required: tuple[Expected, ...] = REQUIRED
) -> list[str]:
    labels = declared_labels()
    missing = []
    for exp in required:
        family = families.get(exp.name)
        if family is None:
            missing.append(f"{exp.what}: {exp.name} is not exposed")
            continue
        if family.type != exp.type:
            missing.append(f"{exp.what}: {exp.name} is a {family.type}, expected {exp.type}")
        declared = labels.get(exp.name, frozenset())
        if exp.labels != declared:
            missing.append(f"{exp.what}: {exp.name} has labels {sorted(declared)}")
    return missing


async def test_required_families_are_exposed(make_server: ServerMaker) -> None:
    server = await make_server()
    _, families = await scrape(server)
    assert missing_families(families) == []


async def _wait_for(
    check: Callable[[], object], http: httpx.AsyncClient, url: str, timeout: float = 60
) -> dict[str, object]:
    """Poll a Prometheus API URL until `check(json)` is truthy; the last JSON."""
    body: dict[str, object] = {}
    for _ in range(int(timeout / 0.25)):
        try:
            body = (await http.get(url)).json()
        except httpx.HTTPError:
            body = {}
        if body and check(body):  # type: ignore[call-arg]
            return body
        await asyncio.sleep(0.25)
    raise AssertionError(f"Prometheus never answered as expected at {url}: {body}")


@pytest.mark.slow
async def test_real_prometheus_scrapes_the_server(make_server: ServerMaker, tmp_path: Path) -> None:
    binary = require_tool("prometheus", "prometheus")
    server = await make_server()
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: ioc\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
    )
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        async with httpx.AsyncClient(timeout=5) as http:
            targets = await _wait_for(
                lambda b: any(
                    t["health"] == "up"
                    for t in b["data"]["activeTargets"]  # type: ignore[index]
                ),
                http,
                f"{api}/targets",
            )
            target = targets["data"]["activeTargets"][0]  # type: ignore[index]
            assert target["lastError"] == ""
            pool = await _wait_for(
                lambda b: b["data"]["result"],  # type: ignore[index]
                http,
                f"{api}/query?query=ioc_db_pool_size",
            )
            assert pool["data"]["result"][0]["value"][1] == "10"  # type: ignore[index]
            up = await _wait_for(
                lambda b: b["data"]["result"],  # type: ignore[index]
                http,
                f"{api}/query?query=up{{job=%22ioc%22}}",
            )
            assert up["data"]["result"][0]["value"][1] == "1"  # type: ignore[index]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
