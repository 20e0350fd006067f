"""Rotation policy: which secrets a ring keeps, when they stop signing, what the header holds."""

from __future__ import annotations

import pytest

from botsys.webhooks import verify
from botsys.webhooks.rotation import Keyring, RingSecret, rotate

A = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
B = "whsec_" + "Qk" * 16
C = "whsec_" + "Qw" * 16
H = 3_600_000


def test_rotation_expires_the_older_secrets_after_the_overlap():
    ring = rotate([RingSecret(A, 0)], B, now_ms=1_000, overlap_ms=H)
    assert ring == [RingSecret(A, 0, 1_000 + H), RingSecret(B, 1_000)]
    # A second rotation never extends an expiry; expired secrets leave the ring.
    ring = rotate(ring, C, now_ms=2_000, overlap_ms=10 * H)
    assert ring == [
        RingSecret(A, 0, 1_000 + H),
        RingSecret(B, 1_000, 2_000 + 10 * H),
        RingSecret(C, 2_000),
    ]
    assert [s.secret for s in rotate(ring, A, now_ms=2 * H, overlap_ms=0)] == [A]


def test_rotating_to_bad_base64_is_refused():
    with pytest.raises(ValueError):
        rotate([], "whsec_not*base64", 0, H)


def test_every_live_secret_signs_and_each_verifies():
    keyring = Keyring(rotate([RingSecret(A, 0)], B, now_ms=0, overlap_ms=H))
    ts = 1_700_000_000
    header = keyring.sign("msg_1", ts, b"{}", now_ms=H - 1)
    assert header.count("v1,") == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    for secret in (A, B):
        verify(secret, headers, b"{}", now=ts)
    after = keyring.sign("msg_1", ts, b"{}", now_ms=H)
    assert after.count("v1,") == 1
    headers["webhook-signature"] = after
    verify(B, headers, b"{}", now=ts)
    with pytest.raises(ValueError):
        verify(A, headers, b"{}", now=ts)


def test_an_empty_ring_signs_nothing():
    assert not Keyring.single("") and Keyring.single("").sign("m", 1, b"", 0) is None
    assert Keyring([RingSecret(A, 0, 5)]).sign("m", 1, b"", now_ms=5) is None
