"""SSRF guard: which destinations a webhook may reach, checked when the URL is given and
again at connect time.

Layers (each one alone would block the known bypasses; together they also give clear errors):
1. ``check_url`` — sync, no DNS: scheme, credentials, IP literals in any encoding a browser or
   curl accepts (``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1``), ``localhost``.
2. ``GuardedResolver`` — wraps aiohttp's resolver and drops denied addresses from each answer,
   so the connector only ever sees vetted addresses (DNS-rebinding safe: no second lookup).
3. ``Guard.socket_factory`` — the last line: every socket aiohttp opens goes through it and
   refuses a denied address before the socket exists. IP-literal URLs skip the resolver in
   aiohttp, so this is what enforces the rule for them.

``ipaddress``'s ``is_global`` alone is not enough (3.11 calls 64:ff9b::/96, 2002::/16,
224.0.0.1 and 192.0.0.8 global, and ::ffff:127.0.0.1 not loopback), hence explicit lists.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DNS_TIMEOUT_S = 5.0

_V4_DENY = [
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (100.64.0.0/10)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local / cloud metadata (169.254.0.0/16)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
]
_V6_DENY = [
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("64:ff9b::/96", "NAT64 (64:ff9b::/96) embeds an IPv4 address"),
    ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
    ("::/96", "IPv4-compatible IPv6 (deprecated)"),
    ("::/8", "reserved (::/8)"),
    ("100::/64", "discard-only (100::/64)"),
    ("2001::/32", "Teredo (2001::/32) embeds an IPv4 address"),
    ("2001:db8::/32", "documentation (2001:db8::/32)"),
    ("2002::/16", "6to4 (2002::/16) embeds an IPv4 address"),
    ("3fff::/20", "documentation (3fff::/20)"),
    ("5f00::/16", "SRv6 SIDs (5f00::/16)"),
    ("fc00::/7", "unique local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("fec0::/10", "site-local (fec0::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
]
_DENY = [(ipaddress.ip_network(net), why) for net, why in _V4_DENY + _V6_DENY]
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_METADATA_NAMES = ("metadata.google.internal", "metadata", "instance-data")


class BlockedDestination(OSError):
    """A destination the SSRF guard refuses (an ``OSError`` so aiohttp wraps it as a
    connection error instead of crashing the request machinery)."""


def canonical(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address it carries."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def classify_address(ip: IPAddress | str) -> str | None:
    """Why ``ip`` may not be a webhook destination, or None if it is publicly routable."""
    if isinstance(ip, str):
        if "%" in ip:
            return "zoned (scoped) IPv6 address"
        ip = ipaddress.ip_address(ip)
    ip = canonical(ip)
    for net, why in _DENY:
        if ip.version == net.version and ip in net:
            return why
    if not ip.is_global:  # whatever IANA adds later that our lists miss
        return "not globally routable"
    return None


def _number(part: str) -> int | None:
    """One dotted part as inet_aton/WHATWG read it: 0x.. hex, 0.. octal, else decimal."""
    if not part.isascii():
        return None
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a browser or curl would connect to for ``host``, or None for a name.

    Raises ValueError for a host that ends in a number but is not a valid address
    (WHATWG URL rejects those instead of looking them up).
    """
    host = host.strip("[]").rstrip(".")
    if ":" in host:
        return ipaddress.IPv6Address(host)  # ValueError if malformed
    parts = host.split(".")
    if not parts or len(parts) > 4 or _number(parts[-1]) is None:
        if parts and parts[-1].isascii() and parts[-1].isdigit():
            raise ValueError(f"malformed numeric host {host!r}")
        return None
    values = [_number(p) for p in parts]
    if any(v is None for v in values):
        raise ValueError(f"malformed numeric host {host!r}")
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise ValueError(f"numeric host {host!r} is out of range")
    total = last
    for i, v in enumerate(head):
        total += v << (8 * (3 - i))
    return ipaddress.IPv4Address(total)


@dataclass(frozen=True)
class AllowList:
    """Destinations exempt from the guard: host names (any port), host:port, CIDRs."""

    names: frozenset[str] = frozenset()
    name_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def __hash__(self) -> int:
        # Computed once: check_url's cache hashes the list on every delivery attempt, and
        # hashing the networks each time would be most of that lookup's cost.
        try:
            return self.__dict__["_hash"]
        except KeyError:
            value = hash((self.names, self.name_ports, self.networks))
            object.__setattr__(self, "_hash", value)
            return value

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        names, pairs, nets = set(), set(), []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if "/" in entry:
                nets.append(ipaddress.ip_network(entry, strict=False))
                continue
            host, port = _split_host_port(entry)
            if port is None and _is_ip(host):
                nets.append(ipaddress.ip_network(host))
            elif port is None:
                names.add(host)
            else:
                pairs.add((_normal_host(host), port))
        return cls(frozenset(names), frozenset(pairs), tuple(nets))

    def permits_name(self, host: str, port: int | None) -> bool:
        host = _normal_host(host)
        return host in self.names or (host, port) in self.name_ports

    def permits_address(self, ip: IPAddress, port: int | None = None) -> bool:
        """A CIDR entry, or an ``ip:port`` entry naming this very endpoint."""
        ip = canonical(ip)
        if port is not None and (str(ip), port) in self.name_ports:
            return True
        return any(ip.version == net.version and ip in net for net in self.networks)


def as_allow_list(allow: AllowList | Iterable[str]) -> AllowList:
    return allow if isinstance(allow, AllowList) else _parse_cached(tuple(allow))


@lru_cache(maxsize=64)
def _parse_cached(entries: tuple[str, ...]) -> AllowList:
    return AllowList.parse(entries)


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port or [v6]
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, None  # a name, an IPv4 or a bare IPv6 address


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _normal_host(host: str) -> str:
    """Lower-case, no trailing dot, IP literals in their canonical text form."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        literal = parse_ip_literal(host)
    except ValueError:
        return host
    return str(canonical(literal)) if literal is not None else host


def check_url(url: str, allow: AllowList | Iterable[str] = ()) -> str | None:
    """Why ``url`` may not be a webhook URL, or None. Sync and DNS-free: cheap enough for
    POST /invoke. Names that need DNS are checked at connect time (or by
    ``check_url_resolving``)."""
    return _check_url(url, as_allow_list(allow))


@lru_cache(maxsize=4096)  # pure; the sender checks the same few URLs on every attempt
def _check_url(url: str, allow: AllowList) -> str | None:
    try:
        parsed = URL(url)
        port = parsed.port
        parsed.host  # noqa: B018 — decodes punycode: a bad IDNA label (xn--a) raises here
    except (ValueError, TypeError) as exc:
        return f"not a valid URL ({exc})"
    problem = _check_shape(parsed)
    if problem:
        return problem
    host = parsed.host.rstrip(".")
    if allow.permits_name(host, port):
        return None
    try:
        literal = parse_ip_literal(host)
    except ValueError as exc:
        return str(exc)
    if literal is not None:
        return _check_literal(literal, allow)
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"blocked destination: {host} is loopback"
    if host in _METADATA_NAMES:
        return f"blocked destination: {host} is a cloud metadata service"
    return None


def _check_shape(parsed: URL) -> str | None:
    if parsed.scheme not in ("http", "https"):
        return f"scheme {parsed.scheme!r} not allowed: use http or https"
    if parsed.user is not None or parsed.password is not None:
        return "credentials in the URL are not allowed"
    if not parsed.host:
        return "the URL has no host"
    if "%" in parsed.host:
        return "percent-encoded or zoned hosts are not allowed"
    return None


def _check_literal(ip: IPAddress, allow: AllowList) -> str | None:
    if allow.permits_address(ip):
        return None
    reason = classify_address(ip)
    return f"blocked destination: {ip} is {reason}" if reason else None


async def check_url_resolving(
    url: str, allow: AllowList | Iterable[str] = (), resolver: AbstractResolver | None = None
) -> str | None:
    """``check_url`` plus a DNS lookup: an error if no resolved address may be used.
    Informative only — the connect-time check is what enforces the rule."""
    allow = as_allow_list(allow)
    problem = check_url(url, allow)
    if problem:
        return problem
    parsed = URL(url)
    host = parsed.host.rstrip(".")
    if allow.permits_name(host, parsed.port) or parse_ip_literal(host) is not None:
        return None
    guarded = GuardedResolver(resolver or DefaultResolver(), allow)
    try:
        await guarded.resolve(host, parsed.port or 0, family=socket.AF_UNSPEC)
    except BlockedDestination as exc:
        return str(exc)
    except (OSError, TimeoutError) as exc:
        return f"cannot resolve {host}: {exc}"
    finally:
        await guarded.close()
    return None


class GuardedResolver(AbstractResolver):
    """Resolves through ``inner`` and keeps only permitted addresses.

    Addresses of allow-listed names are remembered in ``exempt`` so the socket factory lets
    exactly those (address, port) pairs through."""

    def __init__(self, inner: AbstractResolver, allow: AllowList, exempt: set | None = None):
        self._inner = inner
        self._allow = allow
        self.exempt: set[tuple[IPAddress, int | None]] = set() if exempt is None else exempt

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        async with asyncio.timeout(DNS_TIMEOUT_S):
            answers = await self._inner.resolve(host, port, family)
        if self._allow.permits_name(host, port):
            remembered_port = port if (_normal_host(host), port) in self._allow.name_ports else None
            self.exempt.update((canonical(_address(a)), remembered_port) for a in answers)
            return answers
        kept, refused = [], []
        for answer in answers:
            reason = _refusal(_address(answer), self._allow, answer.get("port"))
            (refused if reason else kept).append(reason or answer)
        if not kept:
            raise BlockedDestination(f"blocked destination: {host} resolves to {refused[0]}")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def _address(answer: ResolveResult) -> IPAddress:
    return ipaddress.ip_address(answer["host"].split("%")[0])


def _refusal(ip: IPAddress, allow: AllowList, port: int | None = None) -> str | None:
    if allow.permits_address(ip, port):
        return None
    reason = classify_address(ip)
    return f"{ip} ({reason})" if reason else None


SocketFactory = Callable[[tuple[Any, ...]], socket.socket]


def _plain_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    return socket.socket(family=family, type=type_, proto=proto)


@dataclass
class Guard:
    """The connect-time pieces for one aiohttp connector: resolver + socket factory.

    ``inner_resolver`` / ``inner_socket_factory`` are injectable so tests can answer DNS
    with fakes and spy on (or refuse) every socket the guard lets through."""

    allow: AllowList
    inner_resolver: AbstractResolver | None = None
    inner_socket_factory: SocketFactory = _plain_socket
    exempt: set = field(default_factory=set)

    def resolver(self) -> GuardedResolver:
        """Create inside a running loop (aiohttp's default resolver binds to it)."""
        inner = self.inner_resolver or DefaultResolver()
        return GuardedResolver(inner, self.allow, self.exempt)

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        host, port = addr_info[4][0], addr_info[4][1]
        ip = canonical(ipaddress.ip_address(str(host).split("%")[0]))
        if (ip, port) not in self.exempt and (ip, None) not in self.exempt:
            reason = _refusal(ip, self.allow, port)
            if reason:
                raise BlockedDestination(f"blocked destination: {reason}")
        return self.inner_socket_factory(addr_info)
