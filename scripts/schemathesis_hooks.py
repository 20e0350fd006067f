"""Schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key names one request: reusing it for a different request is a 422 by contract
(docs/API.md), which an OpenAPI schema cannot express. Generated cases reuse header values
freely (the coverage phase sends the same boundary strings with many bodies), so the hook makes
the key a function of the body too: the same body with the same key is still a repeat (200,
still exercised), a different body never collides. tests/api/test_invoke.py covers the 422.
"""

from __future__ import annotations

import hashlib
import json

import schemathesis

KEY = "Idempotency-Key"
MAX_KEY = 200


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    key = headers.get(KEY)
    if case.operation.path != "/invoke" or not isinstance(key, str) or not key:
        return
    body = json.dumps(case.body, sort_keys=True, default=repr).encode()
    digest = hashlib.sha256(body).hexdigest()[:16]
    headers[KEY] = f"{key[: MAX_KEY - len(digest) - 1]}-{digest}"
    case.headers = headers
