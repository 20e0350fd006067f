"""SSRF guard. Denied destinations are refused by the pure checks AND at connect time with
no socket created; DNS comes from a fake resolver; the socket spy refuses (never connects
to) any non-loopback address, so nothing here leaves 127.0.0.1."""

from __future__ import annotations

import ipaddress

import aiohttp
import pytest

from botsys.webhooks.guard import (
    AllowList,
    BlockedDestination,
    Guard,
    check_url,
    check_url_resolving,
    classify_address,
    parse_ip_literal,
)
from botsys.webhooks.sender import Sender, build_session
from botsys.webhooks.types import Delivery
from tests.webhooks.fakes import FakeResolver, SocketSpy

DENIED = [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "172.16.0.1",
    "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.100.100.200", "169.254.169.254",
    "169.254.0.1", "198.18.0.1", "198.19.255.255", "192.0.0.8", "192.0.2.1", "198.51.100.7",
    "203.0.113.9", "192.88.99.1", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
    "::", "::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
    "::127.0.0.1", "fe80::1", "fc00::1", "fd00:ec2::254", "fec0::1", "ff02::1",
    "64:ff9b::a9fe:a9fe", "64:ff9b::808:808", "64:ff9b:1::1", "2002:a9fe:a9fe::1",
    "2002:808:808::1", "2001::1", "2001:0:4136:e378::1", "2001:db8::1", "100::1", "5f00::1",
    "3fff::1",
]  # fmt: skip

ODD_LITERALS = {
    "0x7f000001": "127.0.0.1",
    "2130706433": "127.0.0.1",
    "017700000001": "127.0.0.1",
    "127.1": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "0x7f.1": "127.0.0.1",
    "0": "0.0.0.0",
    "0xa9.0xfe.0xa9.0xfe": "169.254.169.254",
    "2852039166": "169.254.169.254",
    "10.1": "10.0.0.1",
    "127.0.0.1.": "127.0.0.1",
}

PUBLIC = [
    "1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.254", "100.128.0.1", "172.32.0.1",
    "192.169.0.1", "11.0.0.1", "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:1.1.1.1",
]  # fmt: skip

BAD_URLS = [
    "file:///etc/passwd", "gopher://example.com/", "ftp://example.com/", "javascript:alert(1)",
    "http://user:pw@example.com/", "http://user@example.com/", "http:///nohost", "not a url",
    "http://256.1.1.1/", "http://1.2.3.4.5/", "http://foo.123/", "http://09/",
    "http://localhost/", "http://LOCALHOST./", "http://api.localhost/",
    "http://metadata.google.internal/", "http://[fe80::1%25eth0]/", "http://%31%32%37.0.0.1/",
]  # fmt: skip


def _url(ip: str) -> str:
    return f"http://[{ip}]:8080/hook" if ":" in ip else f"http://{ip}:8080/hook"


def _delivery(url: str) -> Delivery:
    return Delivery("msg_1", "python-1", "python", url, b"{}", 1, 5, "t1")


@pytest.mark.parametrize("ip", DENIED)
def test_classifier_denies(ip):
    assert classify_address(ip) is not None
    assert "blocked destination" in check_url(_url(ip))


@pytest.mark.parametrize("ip", PUBLIC)
def test_classifier_allows_public(ip):
    # Pure classification only: nothing ever connects to these.
    assert classify_address(ip) is None
    assert check_url(_url(ip)) is None


@pytest.mark.parametrize("host, expected", ODD_LITERALS.items())
def test_odd_literals_normalised_like_browsers(host, expected):
    assert parse_ip_literal(host) == ipaddress.ip_address(expected)
    assert "blocked destination" in check_url(f"http://{host}/")


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_refused_without_dns(url):
    assert check_url(url) is not None


def test_names_pass_the_sync_check():
    assert check_url("https://hooks.example.com/x?y=1") is None
    assert parse_ip_literal("1e100.net") is None
    assert parse_ip_literal("0xdead.com") is None


def test_allow_list_forms():
    allow = AllowList.parse(
        ["localhost:5000", "mock-webhook", "10.0.0.0/8", "127.0.0.1", "[::1]:9"]
    )
    assert check_url("http://localhost:5000/", allow) is None
    assert check_url("http://LOCALHOST.:5000/", allow) is None
    assert "blocked" in check_url("http://localhost:5001/", allow)
    assert check_url("http://mock-webhook:1234/", allow) is None
    assert check_url("http://10.9.8.7/", allow) is None
    assert check_url("http://127.0.0.1:9999/", allow) is None
    assert check_url("http://2130706433:9999/", allow) is None  # same address, any spelling
    assert check_url("http://[::1]:9/", allow) is None
    assert "blocked" in check_url("http://[::1]:10/", allow)
    assert "blocked" in check_url("http://192.168.0.1/", allow)
    assert "scheme" in check_url("ftp://localhost:5000/", allow)  # allow never relaxes shape


# -- connect time ---------------------------------------------------------------------------


@pytest.fixture
def spy():
    return SocketSpy()


def _guard(table, spy, allow=()):
    return Guard(AllowList.parse(allow), FakeResolver(table), spy)


@pytest.mark.parametrize("ip", DENIED)
async def test_name_resolving_to_denied_address_never_connects(ip, spy):
    guard = _guard({"victim.test": [ip]}, spy)
    async with build_session(2.0, guard) as session:
        result = await Sender(session).send(_delivery("http://victim.test:8080/hook"))
    assert result.blocked and result.error.startswith("blocked_destination")
    assert result.status is None
    assert spy.addresses == []


@pytest.mark.parametrize("ip", DENIED)
async def test_connect_layer_alone_refuses_literals(ip, spy):
    """Bypass check_url: the socket factory still refuses before a socket exists."""
    guard = _guard({}, spy)
    async with build_session(2.0, guard) as session:
        with pytest.raises(aiohttp.ClientError) as err:
            await session.post(_url(ip), data=b"{}")
    assert "blocked destination" in str(err.value) or isinstance(
        err.value.__cause__, BlockedDestination
    )
    assert spy.addresses == []


@pytest.mark.parametrize("host", ODD_LITERALS)
async def test_connect_layer_alone_refuses_odd_literals(host, spy):
    # glibc's getaddrinfo reads these as numbers; the fake resolver does the same.
    guard = _guard({host.rstrip("."): [ODD_LITERALS[host]]}, spy)
    async with build_session(2.0, guard) as session:
        with pytest.raises(aiohttp.ClientError):
            await session.post(f"http://{host}:8080/", data=b"{}")
    assert spy.addresses == []


async def test_dns_rebinding_second_answer_refused(spy):
    resolver = FakeResolver({"rebind.test": [["93.184.216.34"], ["127.0.0.1"]]})
    guard = Guard(AllowList(), resolver, spy)
    guarded = guard.resolver()
    first = await guarded.resolve("rebind.test", 80)
    assert [a["host"] for a in first] == ["93.184.216.34"]
    with pytest.raises(BlockedDestination):
        await guarded.resolve("rebind.test", 80)
    # Through a connector that re-resolves every time: never a socket to 127.0.0.1.
    resolver.table["rebind.test"].extendleft([["127.0.0.1"], ["93.184.216.34"]])
    connector = aiohttp.TCPConnector(
        resolver=guard.resolver(), socket_factory=guard.socket_factory, use_dns_cache=False
    )
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        for _ in range(3):
            with pytest.raises(aiohttp.ClientError):
                await session.post("http://rebind.test/", data=b"{}")
    assert "127.0.0.1" not in spy.addresses
    assert set(spy.addresses) == {"93.184.216.34"}  # refused by the spy, never connected


async def test_multi_answer_keeps_only_public(spy):
    guard = _guard({"multi.test": ["10.0.0.1", "93.184.216.34", "::1", "169.254.169.254"]}, spy)
    async with build_session(2.0, guard) as session:
        result = await Sender(session).send(_delivery("http://multi.test/"))
    assert not result.blocked and result.error.startswith("connection")
    assert spy.addresses == ["93.184.216.34"]


async def test_allow_listed_name_reaches_loopback_but_others_do_not(receiver, spy):
    table = {"hooks.internal": ["127.0.0.1"], "sneaky.test": ["127.0.0.1"]}
    guard = _guard(table, spy, allow=[f"hooks.internal:{receiver.port}"])
    async with build_session(2.0, guard) as session:
        sender = Sender(session, allow=guard.allow)
        ok = await sender.send(_delivery(f"http://hooks.internal:{receiver.port}/"))
        refused = await sender.send(_delivery(f"http://sneaky.test:{receiver.port}/"))
        literal = await sender.send(_delivery(f"http://127.0.0.1:{receiver.port}/"))
    assert ok.status == 200
    assert refused.blocked and literal.blocked
    assert len(receiver.hits) == 1


async def test_proxy_environment_is_ignored(receiver, make_receiver, monkeypatch, spy):
    proxy = await make_receiver()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    guard = _guard({}, spy, allow=["127.0.0.1"])
    async with build_session(2.0, guard) as session:
        result = await Sender(session, allow=guard.allow).send(_delivery(receiver.url))
    assert result.status == 200
    assert len(receiver.hits) == 1 and proxy.hits == []


async def test_check_url_resolving():
    resolver = FakeResolver({"good.test": ["93.184.216.34"], "bad.test": ["10.0.0.1"]})
    assert await check_url_resolving("http://good.test/", (), resolver) is None
    assert "10.0.0.1" in await check_url_resolving("http://bad.test/", (), resolver)
    assert "cannot resolve" in await check_url_resolving("http://nx.test/", (), resolver)
    assert "loopback" in await check_url_resolving("http://127.1/", (), resolver)
    assert resolver.lookups == ["good.test", "bad.test", "nx.test"]


def test_an_ip_port_allow_entry_is_honoured_at_connect_time_too():
    guard = Guard(AllowList.parse(["127.0.0.1:5000"]))
    made = []
    guard.inner_socket_factory = lambda info: made.append(info[4]) or "socket"
    assert guard.socket_factory((2, 1, 6, "", ("127.0.0.1", 5000))) == "socket"
    with pytest.raises(BlockedDestination):
        guard.socket_factory((2, 1, 6, "", ("127.0.0.1", 5001)))
    assert made == [("127.0.0.1", 5000)]


# -- each layer alone, for a `name:port` allow entry --------------------------------------
# The layers overlap on purpose; each test below goes around the others, so a regression in
# one layer cannot hide behind the next.


def test_url_layer_alone_keeps_a_name_port_entry_to_its_port():
    allow = AllowList.parse(["localhost:5000"])  # a name the URL check knows without DNS
    assert check_url("http://localhost:5000/", allow) is None
    assert "blocked" in check_url("http://localhost:5001/", allow)
    assert "blocked" in check_url("http://127.0.0.1:5000/", allow)  # the entry names a name


async def test_resolver_layer_alone_keeps_a_name_port_entry_to_its_port(spy):
    guard = _guard({"hooks.internal": ["127.0.0.1"]}, spy, allow=["hooks.internal:5000"])
    guarded = guard.resolver()
    answers = await guarded.resolve("hooks.internal", 5000)
    assert [a["host"] for a in answers] == ["127.0.0.1"]
    with pytest.raises(BlockedDestination):
        await guarded.resolve("hooks.internal", 5001)


async def test_connect_layer_alone_keeps_a_name_port_entry_to_its_port(make_receiver, spy):
    """After the allowed name resolved to 127.0.0.1, an IP-literal URL (aiohttp skips the
    resolver for those, and no check_url runs here) to another port of that address meets
    only the socket factory, which must refuse it."""
    allowed, other = await make_receiver(), await make_receiver()
    guard = _guard({"hooks.internal": ["127.0.0.1"]}, spy, allow=[f"hooks.internal:{allowed.port}"])
    async with build_session(2.0, guard) as session:
        async with session.post(f"http://hooks.internal:{allowed.port}/", data=b"{}") as r:
            assert r.status == 200
        with pytest.raises(aiohttp.ClientError) as err:
            await session.post(f"http://127.0.0.1:{other.port}/", data=b"{}")
    assert isinstance(err.value.__cause__, BlockedDestination) or "blocked destination" in str(
        err.value
    )
    assert len(allowed.hits) == 1 and other.hits == []
    assert spy.addresses == ["127.0.0.1"], "no socket was made for the other port"
