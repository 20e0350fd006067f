"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Only SHA-256 digests of the configured keys are kept in memory. A presented key is hashed and
compared with ``hmac.compare_digest`` against *every* digest (no early exit), so neither timing
nor the 401 body tells an unknown key from a wrong one. Keys are never logged or stored.
With no keys configured at all, the API is open: the CLI refuses to bind anything but a
loopback address then, and requests must name a loopback host (``Host: localhost:3000``,
``127.0.0.1``, ``[::1]``), so a web page cannot reach the API through DNS rebinding (its
requests carry the attacker's host name). ``--insecure`` turns both checks off.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from aiohttp import web

from .problems import Problem

USER, ADMIN = "user", "admin"
CLIENT = web.RequestKey("client", str)  # who is calling: "key:<digest prefix>" or "ip:<addr>"

# Open routes: probes, metrics, the docs, and the static dashboard (which calls the API with
# the user's key itself).
OPEN_PREFIXES = ("/api-docs", "/admin/queues")
OPEN_PATHS = frozenset({"/health", "/metrics", "/"})


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class KeyRing:
    users: tuple[bytes, ...]
    admins: tuple[bytes, ...]

    @classmethod
    def from_keys(cls, keys: list[str], admin_keys: list[str]) -> KeyRing:
        return cls(tuple(digest(k) for k in keys if k), tuple(digest(k) for k in admin_keys if k))

    @property
    def open(self) -> bool:
        return not (self.users or self.admins)

    def role(self, presented: str) -> str | None:
        """USER, ADMIN (admins may do everything users may), or None."""
        d = digest(presented)
        is_admin = _any_match(d, self.admins)
        is_user = _any_match(d, self.users)
        return ADMIN if is_admin else USER if is_user else None


def _any_match(d: bytes, digests: tuple[bytes, ...]) -> bool:
    found = False
    for candidate in digests:
        found |= hmac.compare_digest(d, candidate)  # every digest compared: constant work
    return found


def presented_key(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key") or None


def is_open_route(request: web.Request) -> bool:
    path = request.path
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def is_admin_route(request: web.Request) -> bool:
    handler = request.match_info.handler
    return getattr(handler, "admin_only", False)


def admin_only(handler):
    """Marks a handler as needing an admin key."""
    handler.admin_only = True
    return handler


UNAUTHORIZED = Problem(
    401,
    "a valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>",
    headers={"WWW-Authenticate": 'Bearer realm="botsys"'},
    kind="unauthorized",
)
FORBIDDEN = Problem(403, "this action needs an admin key", kind="forbidden")
NOT_LOCAL = Problem(
    421,
    "this API has no keys and answers only requests addressed to a loopback host "
    "(localhost, 127.0.0.1, [::1]); set api.keys to serve other host names",
    kind="misdirected-request",
)


@functools.lru_cache(maxsize=64)  # every request asks, with one of a few Host values
def is_loopback_host(host: str) -> bool:
    """Is a Host header (``name[:port]``, ``[v6][:port]``) a loopback name or address?"""
    host = host.strip()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not _is_port(rest)):
            return False
    else:
        name, colon, port = host.partition(":")
        if colon and not port.isdigit():
            return False
    if name.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _addressed_locally(request: web.Request) -> bool:
    # No Host at all (HTTP/1.0) is no browser: rebinding always sends the page's host name.
    host = request.headers.get("Host")
    return host is None or is_loopback_host(host)


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit()


def client_ip(request: web.Request, trusted: tuple) -> str:
    """The caller's address: the peer, or — when the peer is a trusted proxy — the right-most
    X-Forwarded-For hop that is not itself a trusted proxy (left-most hops are client-made)."""
    peer = request.remote or ""
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop if _is_ip(hop) else peer  # garbage (even non-UTF-8 bytes) is no address
    return hops[0] if hops else peer


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _within(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


def make_auth_middleware(ring: KeyRing, on_failure=None, trusted_proxies=(), local_only=True):
    """``on_failure(request)`` runs before a 401: the rate limiter charges the client's IP,
    so guessing keys is throttled like any other traffic (it raises 429 when over).
    ``local_only``: an open API (no keys) refuses requests not addressed to a loopback host."""
    trusted = tuple(ipaddress.ip_network(c, strict=False) for c in trusted_proxies)

    @web.middleware
    async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
        request[CLIENT] = f"ip:{client_ip(request, trusted)}"
        if ring.open and local_only and not _addressed_locally(request):
            raise NOT_LOCAL
        if ring.open or is_open_route(request) or request.method == "OPTIONS":
            return await handler(request)
        key = presented_key(request)
        role = ring.role(key) if key else None
        if role is None:
            if on_failure is not None:
                await on_failure(request)
            raise UNAUTHORIZED
        # rate limits count per key (a digest prefix: the key itself is never kept)
        request[CLIENT] = f"key:{digest(key).hex()[:24]}"
        if role != ADMIN and is_admin_route(request):
            raise FORBIDDEN
        return await handler(request)

    return auth_middleware
