"""Standard Webhooks signing: the reference vector, the reference library, and refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random

import pytest

from botsys.webhooks import WebhookVerificationError, sign, verify
from botsys.webhooks.signing import Signer, secret_key
from tests.support.requires import require_module

# From standard-webhooks/libraries/python/tests/test_webhooks.py::test_sign_function
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
PAYLOAD = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(sig: str, msg_id: str = MSG_ID, ts: int = TS) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_reference_vector():
    assert sign(SECRET, MSG_ID, TS, PAYLOAD) == EXPECTED
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TS, PAYLOAD) == EXPECTED  # prefix optional
    verify(SECRET, headers(EXPECTED), PAYLOAD, now=TS)


@pytest.mark.parametrize("key_len", [1, 24, 32, 63, 64, 65, 200])
def test_signer_matches_stdlib_hmac_for_every_key_length(key_len):
    key = (bytes(range(256)) * 2)[:key_len]
    body = b'{"jobId": "python-1"}' * 50
    mac = hmac.new(key, f"msg_1.{TS}.".encode() + body, hashlib.sha256).digest()
    assert Signer(key).sign("msg_1", TS, body) == "v1," + base64.b64encode(mac).decode()


def test_unpadded_secret_decodes():
    key = base64.b64encode(b"k" * 25).decode().rstrip("=")
    assert secret_key("whsec_" + key) == b"k" * 25


def test_rejects_bad_base64_secret():
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not base64!", MSG_ID, TS, PAYLOAD)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda h, b: (h, b + b" "), "no matching signature"),  # tampered body
        (lambda h, b: (h, b.replace(b"2432", b"2433")), "no matching signature"),
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "no matching signature"),
        (lambda h, b: ({**h, "webhook-timestamp": str(TS + 1)}, b), "no matching signature"),
        (lambda h, b: ({**h, "webhook-signature": "v2," + EXPECTED[3:]}, b), "no matching"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "webhook-id"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-timestamp"}, b), "timestamp"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "signature"),
        (lambda h, b: ({**h, "webhook-timestamp": "hello"}, b), "not unix seconds"),
    ],
)
def test_refusals(mutate, message):
    hdrs, body = mutate(headers(EXPECTED), PAYLOAD)
    with pytest.raises(WebhookVerificationError, match=message):
        verify(SECRET, hdrs, body, now=TS)


def test_wrong_secret():
    other = "whsec_" + base64.b64encode(b"another secret of 24 b!!").decode()
    with pytest.raises(WebhookVerificationError):
        verify(other, headers(EXPECTED), PAYLOAD, now=TS)


@pytest.mark.parametrize(
    "skew, ok", [(-301, False), (-300, True), (0, True), (300, True), (301, False)]
)
def test_timestamp_tolerance(skew, ok):
    ts = TS + skew
    hdrs = headers(sign(SECRET, MSG_ID, ts, PAYLOAD), ts=ts)
    if ok:
        verify(SECRET, hdrs, PAYLOAD, now=TS)
    else:
        with pytest.raises(WebhookVerificationError, match="too (old|new)"):
            verify(SECRET, hdrs, PAYLOAD, now=TS)


def test_multiple_signatures_any_valid_and_case_insensitive_headers():
    sigs = ["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "v1a,xyz", EXPECTED, "junk"]
    hdrs = {"Webhook-Id": MSG_ID, "WEBHOOK-TIMESTAMP": str(TS), "webhook-signature": " ".join(sigs)}
    verify(SECRET, hdrs, PAYLOAD, now=TS)


def test_str_body_is_utf8():
    body = '{"emoji": "ünïcödé ✓"}'
    sig = sign(SECRET, MSG_ID, TS, body.encode())
    verify(SECRET, headers(sig), body, now=TS)


def test_cross_check_with_reference_library():
    standardwebhooks = require_module("standardwebhooks", "pip install -e '.[test]'")
    from datetime import UTC, datetime

    rng = random.Random(7)
    for i in range(50):
        secret = "whsec_" + base64.b64encode(rng.randbytes(rng.randint(24, 64))).decode()
        body = json.dumps({"i": i, "blob": rng.randbytes(rng.randint(0, 300)).hex()}).encode()
        msg_id, ts = f"msg_{i}", TS + i
        ours = sign(secret, msg_id, ts, body)
        ref = standardwebhooks.Webhook(secret)
        theirs = ref.sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
        assert ours == theirs
        # The reference verifier accepts ours (it checks against the real clock).
        now = int(datetime.now(UTC).timestamp())
        ref.verify(body.decode(), headers(sign(secret, msg_id, now, body), msg_id, now))
