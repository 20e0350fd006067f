"""Signing-secret rotation (pure policy; the Redis side is botsys/signing_secrets.py).

A ring holds several secrets. The newest never expires; a rotation gives every older one an
expiry ``overlap`` from now. Every unexpired secret signs, so the ``webhook-signature`` header
carries ``v1,<sig1> v1,<sig2>`` during the overlap and receivers holding either secret verify
(Standard Webhooks: one valid signature is enough). Signing is a ``Signer`` per live key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from botsys.webhooks.signing import Signer, secret_key


@dataclass(frozen=True)
class RingSecret:
    secret: str  # whsec_...
    created_at_ms: int
    expires_at_ms: int | None = None  # None: the current secret

    def live(self, now_ms: int) -> bool:
        return self.expires_at_ms is None or now_ms < self.expires_at_ms

    @property
    def fingerprint(self) -> str:
        """Names a secret in the API without showing it."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:12]

    def to_json(self) -> dict:
        return {
            "secret": self.secret,
            "createdAt": self.created_at_ms,
            "expiresAt": self.expires_at_ms,
        }

    @classmethod
    def from_json(cls, d: dict) -> RingSecret:
        return cls(d["secret"], int(d["createdAt"]), d.get("expiresAt"))


def rotate(
    ring: list[RingSecret], new_secret: str, now_ms: int, overlap_ms: int
) -> list[RingSecret]:
    """The ring after adding ``new_secret`` as current: expired ones dropped, older ones
    expiring ``overlap_ms`` from now (or sooner, if they already were)."""
    secret_key(new_secret)  # ValueError if it is not base64
    out = []
    for old in ring:
        if not old.live(now_ms) or old.secret == new_secret:
            continue
        until = now_ms + overlap_ms
        if old.expires_at_ms is not None:
            until = min(until, old.expires_at_ms)
        if until > now_ms:
            out.append(RingSecret(old.secret, old.created_at_ms, until))
    return [*out, RingSecret(new_secret, now_ms)]


class Keyring:
    """The secrets a sender signs with; ``replace`` swaps them in place (a rotation seen by
    this replica), so a sender built once keeps signing with the current ring."""

    def __init__(self, ring: list[RingSecret] | None = None) -> None:
        self._keys: list[tuple[Signer, int | None]] = []
        self.ring: list[RingSecret] = []
        self.replace(ring or [])

    @classmethod
    def single(cls, secret: str) -> Keyring:
        return cls([RingSecret(secret, 0)] if secret else [])

    def replace(self, ring: list[RingSecret]) -> None:
        self.ring = list(ring)
        self._keys = [(Signer(secret_key(s.secret)), s.expires_at_ms) for s in ring]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def sign(self, msg_id: str, timestamp: int, body: bytes, now_ms: int) -> str | None:
        """``v1,<sig>`` per unexpired secret, space-separated; None when none is left."""
        sigs = [
            signer.sign(msg_id, timestamp, body)
            for signer, expires in self._keys
            if expires is None or now_ms < expires
        ]
        return " ".join(sigs) or None
