"""The OpenAPI 3 document describes every route, its errors and the live configuration."""

from __future__ import annotations

import re

import pytest

from botsys.api.routes import ROUTES
from tests.api.conftest import USER_KEY


@pytest.fixture
async def doc(client):
    r = await client.get("/api-docs/swagger.json")
    assert r.status == 200
    return await r.json()


async def test_is_openapi_3_with_every_route(doc):
    assert doc["openapi"] == "3.0.3"
    for method, path, _, _ in ROUTES:
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)  # the document names no regex
        assert method.lower() in doc["paths"][path], (method, path)
    for item in doc["paths"].values():
        for op in item.values():
            assert "in: body" not in str(op) and op["responses"]
            for p in op.get("parameters", []):
                assert "schema" in p and p["in"] in ("query", "path", "header")


async def test_errors_are_problem_json(doc):
    responses = doc["paths"]["/invoke"]["post"]["responses"]
    assert {"200", "202", "400", "413", "415", "422", "429", "503"} <= set(responses)
    assert "application/problem+json" in responses["422"]["content"]
    assert "application/json" in responses["202"]["content"]
    assert "Retry-After" in responses["429"]["headers"]
    cancel = doc["paths"]["/job/{jobId}"]["delete"]["responses"]
    assert {"200", "202", "404", "409"} <= set(cancel)
    assert "403" in doc["paths"]["/queues/{botType}"]["patch"]["responses"]


async def test_invoke_has_language_examples_and_per_type_variants(doc):
    body = doc["paths"]["/invoke"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"python", "node", "java"}
    schemas = doc["components"]["schemas"]
    variants = [v["$ref"].rsplit("/", 1)[1] for v in schemas["InvokeRequest"]["oneOf"]]
    assert sorted(variants) == [
        "InvokeRequest_java",
        "InvokeRequest_node",
        "InvokeRequest_python",
        "InvokeRequest_target",
    ]
    node = schemas["InvokeRequest_node"]["properties"]
    assert node["botType"]["enum"] == ["node"] and "process_api" in node["bot"]["enum"]
    assert node["timeout"]["maximum"] == 3600
    assert schemas["InvokeRequest_node"]["additionalProperties"] is False


async def test_security_only_when_keys_are_configured(doc, make_client):
    assert "security" not in doc
    locked = await make_client(**{"api.keys": [USER_KEY]})
    locked_doc = await (await locked.get("/api-docs/swagger.json")).json()
    assert locked_doc["security"] == [{"bearer": []}, {"apiKey": []}]
    assert locked_doc["paths"]["/health"]["get"]["security"] == []


async def test_two_apps_build_the_same_document(doc, make_client):
    other = await make_client()
    assert await (await other.get("/api-docs/swagger.json")).json() == doc
