"""Rate limiting: exact across replicas (one Redis), headers on every answer, 429s."""

from __future__ import annotations

import pytest

from botsys.api.ratelimit import RATE_CLOCK, parse_rate
from botsys.app import create_app
from tests.api.conftest import USER_KEY, auth
from tests.api.test_invoke import problem
from tests.conftest import make_settings

NOW = 1_800_000_000_000  # pinned: a window boundary cannot split the run


def test_parse_rate():
    assert parse_rate("600/minute") == (600, 60_000)
    assert parse_rate("5/second") == (5, 1000) and parse_rate("1/hour") == (1, 3_600_000)
    assert parse_rate("0") is None


async def test_limit_headers_and_429(make_client):
    now = [NOW]
    client = await make_client(clock=lambda: now[0], **{"api.rate_limit": "3/minute"})
    for remaining in (2, 1, 0):
        r = await client.get("/stats")
        assert r.status == 200
        assert r.headers["RateLimit-Limit"] == "3"
        assert r.headers["RateLimit-Remaining"] == str(remaining)
        assert r.headers["RateLimit-Reset"] == "60"
    body = await problem(await client.get("/stats"), 429)
    assert "rate limit" in body["detail"]
    r = await client.get("/stats")
    assert r.headers["Retry-After"] == "60" and r.headers["RateLimit-Remaining"] == "0"
    assert (await client.get("/health")).status == 200  # exempt
    assert (await client.get("/metrics")).status == 200
    now[0] += 60_000  # the next window
    assert (await client.get("/stats")).status == 200


async def test_off_means_no_headers(make_client):
    client = await make_client(**{"api.rate_limit": "0"})
    r = await client.get("/stats")
    assert r.status == 200 and "RateLimit-Limit" not in r.headers


async def test_limits_are_per_key(make_client):
    client = await make_client(
        clock=lambda: NOW, **{"api.rate_limit": "1/minute", "api.keys": [USER_KEY, "other-key"]}
    )
    assert (await client.get("/stats", headers=auth(USER_KEY))).status == 200
    assert (await client.get("/stats", headers=auth(USER_KEY))).status == 429
    assert (await client.get("/stats", headers=auth("other-key"))).status == 200


async def test_exact_across_two_replicas(aiohttp_client, redis_server):
    """Two apps on one real Redis, 20/minute, 60 requests round-robin → 20 × 2xx, 40 × 429."""
    settings = make_settings(
        **{"redis.url": redis_server.url, "api.rate_limit": "20/minute", "api.keys": [USER_KEY]}
    )
    replicas = []
    for _ in range(2):
        app = create_app(settings, with_workers=False)
        app[RATE_CLOCK] = lambda: NOW
        replicas.append(await aiohttp_client(app))
    statuses = []
    for i in range(60):
        r = await replicas[i % 2].get("/bots", headers=auth(USER_KEY))
        statuses.append(r.status)
        if r.status == 429:
            assert int(r.headers["Retry-After"]) >= 1 and "RateLimit-Reset" in r.headers
    assert statuses.count(200) == 20 and statuses.count(429) == 40
    assert statuses[:20] == [200] * 20


@pytest.mark.parametrize("backend", ["redis"])
async def test_redis_time_window_on_both_replicas(aiohttp_client, redis_server, backend):
    """Without a pinned clock both replicas count in Redis's own window (TIME)."""
    settings = make_settings(**{"redis.url": redis_server.url, "api.rate_limit": "10/hour"})
    a = await aiohttp_client(create_app(settings, with_workers=False))
    b = await aiohttp_client(create_app(settings, with_workers=False))
    first = await a.get("/bots")
    reset = int(first.headers["RateLimit-Reset"])
    if reset < 5:  # the hour is about to turn: skip rather than straddle two windows
        pytest.skip("window boundary")
    statuses = [first.status] + [(await (a if i % 2 else b).get("/bots")).status for i in range(14)]
    assert statuses.count(200) == 10 and statuses.count(429) == 5


async def test_bad_keys_are_charged_to_the_client_ip(make_client):
    """Guessing keys is throttled: failed authentications count against the caller's IP."""
    client = await make_client(
        clock=lambda: NOW, **{"api.rate_limit": "3/minute", "api.keys": [USER_KEY]}
    )
    for i in range(3):
        assert (await client.get("/stats", headers=auth(f"guess-{i}"))).status == 401
    body = await problem(await client.get("/stats", headers=auth("guess-3")), 429)
    assert "rate limit" in body["detail"]
    assert (await client.get("/stats", headers=auth(USER_KEY))).status == 200  # own bucket


@pytest.mark.parametrize(
    "trusted, forwarded, expected",
    [
        ([], "203.0.113.9", "127.0.0.1"),  # no trusted proxy: the header is ignored
        (["127.0.0.0/8"], "203.0.113.9", "203.0.113.9"),
        (["127.0.0.0/8"], "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # left hops are client-made
        (["127.0.0.0/8", "10.0.0.0/8"], "203.0.113.9, 10.1.2.3", "203.0.113.9"),
        (["127.0.0.0/8"], "", "127.0.0.1"),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(trusted, forwarded, expected):
    import ipaddress

    from aiohttp.test_utils import make_mocked_request

    from botsys.api.auth import client_ip

    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/stats", headers=headers)
    request._transport_peername = ("127.0.0.1", 5555)
    nets = tuple(ipaddress.ip_network(c) for c in trusted)
    assert client_ip(request, nets) == expected


async def test_clients_behind_a_trusted_proxy_get_their_own_limit(make_client):
    client = await make_client(
        clock=lambda: NOW,
        **{"api.rate_limit": "2/minute", "api.trusted_proxies": ["127.0.0.0/8"]},
    )
    alice, bob = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
    assert [(await client.get("/stats", headers=alice)).status for _ in range(3)] == [200, 200, 429]
    assert (await client.get("/stats", headers=bob)).status == 200
