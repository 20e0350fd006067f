"""API keys, security headers, request ids, CORS, the access log and HTTP metrics."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from botsys.api import headers as http_headers
from botsys.api.auth import KeyRing
from tests.api.conftest import ADMIN_KEY, USER_KEY, auth
from tests.api.test_invoke import problem

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@pytest.fixture
async def locked(make_client):
    return await make_client(**{"api.keys": [USER_KEY], "api.admin_keys": [ADMIN_KEY]})


async def test_bad_keys_get_identical_401s(locked):
    bodies = set()
    for headers in [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {USER_KEY}x"},
        {"Authorization": f"Basic {USER_KEY}"},
        {"Authorization": "Bearer "},
        {"X-API-Key": "nope"},
        {"X-API-Key": USER_KEY[:-1]},
    ]:
        r = await locked.get("/stats", headers=headers)
        body = await problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        bodies.add(json.dumps(body, sort_keys=True))
    assert len(bodies) == 1


async def test_both_header_forms_work(locked):
    assert (await locked.get("/stats", headers=auth(USER_KEY))).status == 200
    assert (await locked.get("/stats", headers={"X-API-Key": USER_KEY})).status == 200
    assert (
        await locked.get("/stats", headers={"Authorization": f"bearer {USER_KEY}"})
    ).status == 200


async def test_open_routes_need_no_key(locked):
    for path in ("/health", "/metrics", "/api-docs", "/api-docs/swagger.json"):
        assert (await locked.get(path)).status == 200, path


def test_only_digests_are_kept():
    ring = KeyRing.from_keys([USER_KEY], [ADMIN_KEY])
    assert USER_KEY.encode() not in repr(ring).encode()
    assert ring.role(USER_KEY) == "user" and ring.role(ADMIN_KEY) == "admin"
    assert ring.role("other") is None


def test_digests_are_compared_with_compare_digest(monkeypatch):
    import botsys.api.auth as auth_module

    calls = []
    real = auth_module.hmac.compare_digest
    monkeypatch.setattr(
        auth_module.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b)
    )
    KeyRing.from_keys(["a", "b"], ["c"]).role("a")
    assert len(calls) == 3  # every digest, no early exit


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/stats", 200),
        ("GET", "/nope", 404),
        ("PUT", "/invoke", 405),
        ("POST", "/invoke", 422),
        ("GET", "/health", 200),
        ("GET", "/metrics", 200),
    ],
)
async def test_security_headers_on_every_response(client, method, path, status):
    r = await client.request(method, path, json={} if method == "POST" else None)
    assert r.status == status
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    if status == 405:
        assert r.headers["Allow"] == "POST"


async def test_swagger_ui_csp_allows_its_own_script(client):
    r = await client.get("/api-docs")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in csp and "frame-ancestors 'none'" in csp
    assert "https://" not in await r.text()  # no CDN: everything is served from here
    assert (await client.get("/api-docs/static/swagger-ui-bundle.js")).status == 200


async def test_request_id_is_echoed_or_generated(client):
    r = await client.get("/stats", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = await client.get("/stats", headers={"X-Request-Id": "bad id\twith junk"})
    assert len(r.headers["X-Request-Id"]) == 32
    assert len((await client.get("/nope")).headers["X-Request-Id"]) == 32


async def test_cors_is_off_by_default_and_on_when_configured(client, make_client):
    r = await client.get("/stats", headers={"Origin": "https://ui.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}
    r = await client.options("/invoke", headers=preflight)  # off: no preflight middleware
    assert r.status == 405 and "Access-Control-Allow-Methods" not in r.headers
    cors = await make_client(**{"api.cors_origins": ["https://ui.example"]})
    r = await cors.get("/stats", headers={"Origin": "https://ui.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    r = await cors.options("/invoke", headers=preflight)
    assert r.status == 204 and "POST" in r.headers["Access-Control-Allow-Methods"]
    r = await cors.get("/stats", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_access_log_line_without_secrets(locked, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="botsys.access")
    ticks = iter([100.0, 100.25])  # the middleware's clock: request start, then end
    monkeypatch.setattr(http_headers, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    await locked.get(
        "/job/python-01J00000000000000000000000", headers=auth(USER_KEY) | {"X-Request-Id": "rid-1"}
    )
    (record,) = [r for r in caplog.records if r.name == "botsys.access"]
    assert record.method == "GET" and record.route == "/job/{jobId}" and record.status == 404
    assert record.duration_ms == 250.0
    assert USER_KEY not in caplog.text and "Authorization" not in caplog.text


async def test_http_metrics_use_route_patterns(client):
    await client.get("/job/python-01J00000000000000000000000")
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="GET",route="/job/{jobId}",status="404"} 1.0' in text
