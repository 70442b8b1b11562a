"""The OpenAPI description is valid and complete: a bearer scheme on every authenticated
operation, a description on every operation, ingest bodies with real examples that the API
accepts, every error as problem+json, and every problem type explained at its own URL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

import ioc.app  # noqa: F401  (imports every room, so every IocError subclass exists)
from ioc.api.openapi import NOT_PROBLEMS
from ioc.api.problem_types import PROBLEM_TYPES
from ioc.errors import IocError
from tests.conftest import TokenMaker

PUBLIC = {"/healthz", "/readyz", "/metrics", "/api/v1/federation/inbox"}
INGEST = ["dossiers", "procedures", "reports", "documents", "agency-reports"]
PROBLEM = "application/problem+json"


@pytest.fixture
async def spec(http: httpx.AsyncClient) -> dict[str, Any]:
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


async def test_the_description_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)  # raises on any violation of the OpenAPI 3.1 specification
    assert len(operations(spec)) >= 40


async def test_every_authenticated_operation_declares_the_bearer_scheme(
    spec: dict[str, Any],
) -> None:
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for method, path, op in operations(spec):
        if path in PUBLIC:
            assert "security" not in op, (method, path)
            continue
        assert op["security"] == [{"bearer": []}], (method, path)
        for status in ("401", "403", "429"):
            assert status in op["responses"], (method, path, status)
        assert "**Who may call it**" in op["description"], (method, path)


async def test_every_operation_says_what_it_does(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        text = op.get("description", "").split("**Who may call it**")[0].strip()
        assert len(text) >= 60, (method, path, text)
        assert op.get("summary"), (method, path)


async def test_every_error_is_a_documented_problem(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert sorted(schemas["Problem"]["properties"]["type"]["enum"]) == sorted(
        t.uri for t in PROBLEM_TYPES.values()
    )
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if status[0] not in "45" or (method, path, status) in NOT_PROBLEMS:
                continue
            assert response["content"] == {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, status)
            assert response["description"], (method, path, status)
        if op.get("parameters") or "requestBody" in op:
            assert "422" in op["responses"], (method, path)
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in op["responses"], (method, path)


async def test_ingest_bodies_have_real_examples_the_api_accepts(
    spec: dict[str, Any], http: httpx.AsyncClient, make_token: TokenMaker
) -> None:
    auth = {"Authorization": f"Bearer {await make_token('admin', None)}"}
    for feed in INGEST:
        op = spec["paths"][f"/api/v1/ingest/{feed}"]["post"]
        assert {"400", "413", "415", "422"} <= set(op["responses"]), feed
        content = op["requestBody"]["content"]
        media = "application/xml" if feed == "documents" else "application/json"
        assert op["requestBody"]["required"] is True
        examples = content[media]["examples"]
        assert examples, feed
        for name, example in examples.items():
            value = example["value"]
            body = value.encode() if media == "application/xml" else json.dumps(value).encode()
            answer = await http.post(
                f"/api/v1/ingest/{feed}",
                content=body,
                headers={**auth, "content-type": media},
                params={"source": "openapi-examples"},
            )
            assert answer.status_code == 200, (feed, name, answer.text)
            assert answer.json()["accepted"] >= 1, (feed, name, answer.text)
    xml = spec["paths"]["/api/v1/ingest/documents"]["post"]["requestBody"]["content"]
    assert xml["application/xml"]["examples"]["envelope"]["value"].startswith("<?xml")


async def test_each_problem_type_url_explains_itself(http: httpx.AsyncClient) -> None:
    index = await http.get("/problems")
    assert index.status_code == 200
    for kind in PROBLEM_TYPES.values():
        assert kind.uri in index.text
        page = await http.get(kind.uri)
        assert page.status_code == 200, kind.uri
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        for text in (kind.title, kind.title_vi, "Cần làm gì", "What to do"):
            assert text in page.text, (kind.uri, text)
    unknown = await http.get("/problems/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "/problems/not-found"


async def test_every_error_class_names_a_registered_type() -> None:
    def subclasses(cls: type[IocError]) -> list[type[IocError]]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    classes = [IocError, *subclasses(IocError)]
    assert len(classes) >= 12
    for cls in classes:
        kind = PROBLEM_TYPES.get(cls.type_slug)
        assert kind is not None, f"{cls.__name__}.type_slug {cls.type_slug!r} is not registered"
        assert kind.status == cls.status, cls


async def test_answers_carry_the_relative_type_of_their_page(http: httpx.AsyncClient) -> None:
    missing = await http.get("/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["type"] == "/problems/not-found"
    wrong = await http.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["type"] == "/problems/method-not-allowed"
    no_token = await http.get("/api/v1/kpis/catalogue")
    assert no_token.json()["type"] == "/problems/unauthorized"
    assert (await http.get(no_token.json()["type"])).status_code == 200
