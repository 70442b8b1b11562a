"""deploy/: what can be validated without a container engine or a cluster.

Parsed and cross-checked here: every YAML file; the compose topology, and the compose file
against the Compose Specification's JSON schema (vendored beside this file) before and after
its variables are interpolated as the specification says; the Kubernetes manifests
(built with `kubectl kustomize` where installed); the systemd unit (`systemd-analyze
verify`); the Prometheus configuration and rules (`promtool`); the Grafana dashboard's
queries against the metrics ioc exposes; the Caddyfile (`caddy validate`, then a real Caddy
in front of two real servers passing HTTP and a websocket). The image itself can only be
built where a Docker engine runs (not here): its Dockerfile is checked for the essentials.
A missing tool skips a test on a developer's machine and fails it under CI (`tests/tools.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
import websockets
import yaml
from prometheus_client import REGISTRY

from ioc.app import create_app
from ioc.kpis import CATALOGUE
from ioc.settings import Settings
from tests.conftest import ServerMaker, TokenMaker, free_port
from tests.hardening.test_authz_matrix import app_routes
from tests.tools import missing, require_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_ENV = {"IOC_DB_PASSWORD": "test-password", "GRAFANA_ADMIN_PASSWORD": "test-admin"}


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def settings_fields() -> set[str]:
    return {"IOC_" + name.upper() for name in Settings.model_fields}


def test_every_yaml_file_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(files) >= 15
    for path in files:
        assert load_all(path), f"{path} is empty"


# --- compose


def test_compose_topology() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "migrate",
        "ioc1",
        "ioc2",
        "proxy",
        "prometheus",
        "grafana",
    }
    for name in ("ioc1", "ioc2"):
        replica = services[name]
        assert replica["environment"]["IOC_MIGRATE_ON_START"] == "false"
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert replica["read_only"] is True
        assert set(replica["environment"]) <= settings_fields()
    assert services["migrate"]["command"] == ["ioc", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["proxy"]["environment"]["IOC_UPSTREAMS"] == "ioc1:8000 ioc2:8000"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    ioc_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "ioc")
    assert ioc_job["static_configs"][0]["targets"] == ["ioc1:8000", "ioc2:8000"]


# The Compose Specification's JSON schema, vendored from github.com/compose-spec/compose-spec
# (schema/compose-spec.json, commit 170098b, Apache-2.0): the schema `docker compose` itself
# validates against, so the file is checked without a Docker client or engine.
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")

# Interpolation as the Compose Specification defines it: `$$` is a literal `$`; `${VAR}` and
# `$VAR`; `${VAR:-default}` / `${VAR-default}`; `${VAR:?error}` / `${VAR?error}` (required);
# `${VAR:+alternative}` / `${VAR+alternative}`.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


class MissingVariable(Exception):
    """A required variable (`${VAR:?message}`) is unset or empty."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """`value` (a parsed compose document or part of one) with every variable substituted."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["bare"] or m["name"]
        op, arg = m["op"] or "", m["arg"] or ""
        present = name in env and (env[name] != "" or not op.startswith(":"))
        if op.endswith("-"):
            return env[name] if present else arg
        if op.endswith("?"):
            if not present:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return env[name]
        if op.endswith("+"):
            return arg if present else ""
        return env.get(name, "")

    return INTERPOLATION.sub(substitute, value)


def compose_schema_errors(document: Any) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(document)
    )


def test_compose_file_follows_the_compose_specification() -> None:
    written = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    # The file as written, and as Compose sees it after interpolation, both follow the schema.
    assert compose_schema_errors(written) == []
    rendered = interpolate(written, COMPOSE_ENV)
    assert compose_schema_errors(rendered) == []
    url = rendered["services"]["ioc1"]["environment"]["IOC_DATABASE_URL"]
    assert url == "postgresql://ioc:test-password@postgres:5432/ioc"
    assert rendered["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "test-password"
    assert rendered["services"]["ioc1"]["environment"]["IOC_PUBLIC_URL"] == "http://localhost:8080"
    # Without a password the configuration is refused rather than run with a default.
    for secret in COMPOSE_ENV:
        bare = {k: v for k, v in COMPOSE_ENV.items() if k != secret}
        with pytest.raises(MissingVariable, match=secret):
            interpolate(written, bare)
        with pytest.raises(MissingVariable, match=secret):
            interpolate(written, {**bare, secret: ""})


def test_the_schema_check_catches_mistakes() -> None:
    """The validator is not vacuous: typical slips in a compose file are reported."""
    written = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    broken = interpolate(written, COMPOSE_ENV)
    broken["services"]["ioc1"]["restart_policy"] = "always"  # not a service key
    broken["services"]["ioc2"]["depends_on"]["migrate"]["condition"] = "service_done"
    broken["services"]["proxy"]["ports"] = 8080  # must be a list
    errors = compose_schema_errors(broken)
    assert any(e.startswith("services/ioc1") and "restart_policy" in e for e in errors)
    assert any(e.startswith("services/ioc2/depends_on") for e in errors)
    assert any(e.startswith("services/proxy/ports") for e in errors)
    assert interpolate("a$$b ${X:+y} ${Y-d} ${Z:-e} $X", {"X": "1", "Y": ""}) == "a$b y  e 1"


def test_dockerfile_is_slim_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(image.startswith("python:3.11-slim") for image in froms)
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert text.rstrip().endswith('CMD ["ioc", "serve"]')
    assert "HEALTHCHECK" in text and "/healthz" in text


# --- Kubernetes


def k8s_documents() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        built = subprocess.run(
            [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
        )
        assert built.returncode == 0, built.stderr
        return [d for d in yaml.safe_load_all(built.stdout) if d]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in load_all(K8S / name)]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def test_kubernetes_manifests() -> None:
    docs = k8s_documents()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
    ]
    deployment = by_kind(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"] == "1Gi"
    # Service, PDB and HPA point at the Deployment's pods.
    service = by_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    assert by_kind(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 2
    # The Ingress keeps websockets open and takes a full ingest batch.
    ingress = by_kind(docs, "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(notes["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "17m"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    job = by_kind(docs, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["ioc", "db", "upgrade"]
    # Every setting the ConfigMap and the example Secret give is a real ioc setting.
    config = by_kind(docs, "ConfigMap")
    assert config["data"]["IOC_MIGRATE_ON_START"] == "false"
    secret = load_all(K8S / "secret.example.yaml")[0]
    assert set(config["data"]) | set(secret["stringData"]) <= settings_fields()
    assert all(d["metadata"].get("namespace", "ioc") == "ioc" for d in docs)


# --- systemd


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    unit = (DEPLOY / "systemd" / "ioc.service").read_text()
    env_example = (DEPLOY / "systemd" / "ioc.env.example").read_text()
    keys = {line.split("=", 1)[0] for line in env_example.splitlines() if "=" in line}
    assert keys <= settings_fields()
    # Point it at the `ioc` installed beside this interpreter (the venv's) so verify can
    # check the executables exist.
    ioc_bin = Path(sys.executable).parent / "ioc"
    if not ioc_bin.exists():
        ioc_bin = Path(shutil.which("ioc") or "/nonexistent")
    if not ioc_bin.exists():
        missing("no installed `ioc` executable to point the unit at (pip install -e .)")
    local = unit.replace("/opt/ioc/venv/bin/ioc", str(ioc_bin)).replace(
        "EnvironmentFile=/etc/ioc/ioc.env", f"EnvironmentFile={tmp_path / 'ioc.env'}"
    )
    (tmp_path / "ioc.env").write_text(env_example)
    (tmp_path / "ioc.service").write_text(local)
    out = subprocess.run(
        [analyze, "verify", str(tmp_path / "ioc.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ExecStart=" in unit and "User=ioc" in unit


def test_systemd_documentation_points_at_what_an_install_has() -> None:
    """`Documentation=` once named /opt/ioc/deploy/README.md, which the wheel does not
    install; every link must be something an installed ioc has: a page it serves."""
    unit = (DEPLOY / "systemd" / "ioc.service").read_text()
    links = [
        link
        for line in unit.splitlines()
        if line.startswith("Documentation=")
        for link in line.split("=", 1)[1].split()
    ]
    assert links
    served = {path for _, path in app_routes(create_app(Settings()))}
    for link in links:
        parts = urlsplit(link)
        assert parts.scheme == "http" and parts.hostname == "127.0.0.1", link
        assert parts.path in served, link


# --- Prometheus and Grafana


def exposed_metric_names() -> set[str]:
    import ioc.metrics  # noqa: F401 - registers every family

    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "summary": ("_count", "_sum"),
    }
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        # A labelled family has no samples before its first use: name its series by type.
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    return names


METRIC_IN_QUERY = re.compile(r"\b(ioc_[a-z0-9_]+)")


def unknown_metrics(queries: list[str]) -> list[str]:
    known = exposed_metric_names()
    return sorted({m for q in queries for m in METRIC_IN_QUERY.findall(q) if m not in known})


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ioc.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_prometheus_config_and_rules() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 5
    assert unknown_metrics(exprs) == []
    promtool = require_tool("promtool", "prometheus")
    for args in (["check", "config"], ["check", "rules"]):
        target = "prometheus.yml" if args[1] == "config" else "rules.yml"
        out = subprocess.run(
            [promtool, *args, str(DEPLOY / "prometheus" / target)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_dashboard_is_provisioned_and_queries_exposed_metrics() -> None:
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "ioc.yaml").read_text()
    )
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ioc.json").read_text())
    assert dashboard["uid"] == "ioc-overview"
    queries = dashboard_queries()
    assert len(queries) >= 30
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"] if p["type"] != "row")
    assert unknown_metrics(queries) == []
    assert any("ioc_kpi_value" in q for q in queries)


def test_grafana_kpi_panels_keep_one_kind_of_number_per_axis() -> None:
    """Counts (received, overdue), ratios and hours once shared one `short` axis, so every
    rate sat flat at the bottom beside the counts. Each KPI of the catalogue is drawn by
    exactly one KPI panel, whose axis unit is the KPI's own."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ioc.json").read_text())
    grafana_unit = {"ratio": "percentunit", "count": "short", "hours": "h"}
    panels = [
        (re.search(r'kpi=~"([^"]+)"', t["expr"]), p["fieldConfig"]["defaults"]["unit"], p["type"])
        for p in dashboard["panels"]
        for t in p.get("targets", [])
        if "ioc_kpi_value" in t["expr"]
    ]
    assert all(found for found, _, _ in panels), "every KPI panel selects its KPIs by kind"
    for kpi in CATALOGUE.values():
        units = {
            unit
            for found, unit, kind in panels
            if found and kind == "timeseries" and re.fullmatch(found[1], kpi.id)
        }
        assert units == {grafana_unit[kpi.unit]}, (kpi.id, kpi.unit, units)


# --- Caddy in front of two real servers


def test_caddyfile_validates() -> None:
    caddy = require_tool("caddy", "caddy")
    env = {**os.environ, "IOC_UPSTREAMS": "ioc1:8000 ioc2:8000", "IOC_LISTEN": ":18080"}
    out = subprocess.run(
        [
            caddy,
            "validate",
            "--config",
            str(DEPLOY / "caddy" / "Caddyfile"),
            "--adapter",
            "caddyfile",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Valid configuration" in out.stdout + out.stderr


@pytest.mark.slow
async def test_caddy_passes_http_and_websockets_to_both_replicas(
    make_server: ServerMaker, make_token: TokenMaker, tmp_path: Path
) -> None:
    caddy = require_tool("caddy", "caddy")
    a, b = await make_server(), await make_server()
    port = free_port()
    env = {
        **os.environ,
        "IOC_UPSTREAMS": f"127.0.0.1:{a.port} 127.0.0.1:{b.port}",
        "IOC_LISTEN": f"127.0.0.1:{port}",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    proc = subprocess.Popen(
        [caddy, "run", "--config", str(DEPLOY / "caddy" / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "caddy.log").open("w"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            for _ in range(20):
                assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/metrics")).status_code == 404
        token = await make_token("operator", "689")
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
            await ws.send(json.dumps({"type": "subscribe", "unit": "689", "windows": ["today"]}))
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            assert first["type"] == "snapshot"
            assert first["unit"] == "689"
        # One replica goes away: the proxy retries the other, clients see no error.
        await a.stop()
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            statuses = [(await http.get("/healthz")).status_code for _ in range(10)]
        assert statuses == [200] * 10
    finally:
        proc.terminate()
        proc.wait(timeout=30)
