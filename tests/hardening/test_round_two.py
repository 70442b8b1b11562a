"""Hardening, round two (issue 22): what an outside attack found, kept fixed."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from ioc.alerts.models import RuleIn
from ioc.kpis.models import TargetIn
from tests.conftest import ServerMaker, TokenMaker

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
