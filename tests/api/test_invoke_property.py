"""Property: whatever body POST /invoke gets, the answer is never a 5xx and always JSON —
application/problem+json for errors, with nothing JSON.parse would reject (no NaN/Infinity) —
and an accepted job reads back (GET /job) as valid JSON too.

Bodies are JSON *text* built by hypothesis, so they can hold what a JSON library would not
write: NaN, Infinity, 1e400, huge integers, lone surrogates (values and keys), deep nesting,
odd keys, and odd types for every field. In process, on the embedded store; bounded to a few
seconds (derandomized, so a failure reproduces).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botsys.app import create_app
from tests.conftest import make_settings

FIELDS = ["botType", "bot", "payload", "webhookUrl", "priority", "timeout", "attempts", "delay"]
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "9" * 5000]


def text_of(value: str) -> str:
    return json.dumps(value)  # ASCII escapes: a lone surrogate becomes "\ud800"


any_char = st.characters(exclude_categories=())  # surrogates included
strings = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=any_char, max_size=8),
    st.sampled_from(["", "python", "node", "java", "ruby", "simulate", "hello", "../x"]),
).map(text_of)
numbers = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: json.dumps(f)),
    st.sampled_from(ODD_NUMBERS),
)
scalars = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, strings)


def nested(children):
    arrays = st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
    keys = st.one_of(strings, st.text(alphabet=any_char, max_size=4).map(text_of))
    objects = st.lists(st.tuples(keys, children), max_size=4).map(
        lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
    )
    return st.one_of(arrays, objects)


values = st.recursive(scalars, nested, max_leaves=12)
deep = st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "1" + "]" * n)
urls = st.sampled_from(
    ["http://localhost:5000/hook", "http://xn--a:5000/", "http://127.0.0.1/", "ftp://x.y/", "x"]
).map(text_of)
field_values = {
    "botType": st.one_of(st.sampled_from(["python", "node", "java"]).map(text_of), values),
    "bot": st.one_of(st.sampled_from(["simulate", "hello", "nope"]).map(text_of), values),
    "payload": st.one_of(values, deep),
    "webhookUrl": st.one_of(urls, values),
    "priority": st.one_of(st.integers(-5, 1005).map(str), values),
    "timeout": st.one_of(st.floats(0, 5000).map(json.dumps), values),
    "attempts": st.one_of(st.integers(-1, 12).map(str), values),
    "delay": st.one_of(st.integers(-1, 10**11).map(str), values),
}
objects = st.fixed_dictionaries(
    {}, optional={**field_values, "extra": values, "\\ud800": values}
).map(lambda d: "{" + ",".join(f"{text_of(k)}:{v}" for k, v in d.items()) + "}")
payload_objects = st.one_of(nested(values).filter(lambda t: t.startswith("{")), deep)
# Mostly-valid requests reach the store and the read-back, where odd payloads would show.
plausible = st.fixed_dictionaries(
    {"botType": st.sampled_from(["python", "node"]).map(text_of), "payload": payload_objects},
    optional={"webhookUrl": urls, "priority": st.integers(1, 1000).map(str)},
).map(lambda d: "{" + ",".join(f"{text_of(k)}:{v}" for k, v in d.items()) + "}")
bodies = st.one_of(plausible, plausible, objects, objects, values, deep)
keys = st.one_of(st.none(), st.sampled_from(["k1", "k2"]))


def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in a response")

    return json.loads(text, parse_constant=refuse)


async def post(client: TestClient, body: str, key: str | None) -> tuple[int, str, str]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    r = await client.post("/invoke", data=body.encode("utf-8", "surrogatepass"), headers=headers)
    return r.status, r.content_type, await r.text()


async def get_text(client: TestClient, path: str) -> str:
    r = await client.get(path)
    assert r.status == 200, r.status
    return await r.text()


def test_invoke_never_answers_5xx_and_always_json():
    loop = asyncio.new_event_loop()
    app = create_app(make_settings(**{"api.rate_limit": "0"}), with_workers=False)
    client = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    seen: set[int] = set()

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies, key=keys)
    def check(body, key):
        status, content_type, text = loop.run_until_complete(post(client, body, key))
        seen.add(status)
        assert status < 500, (status, text)
        answer = strict_json(text)
        if status >= 400:
            assert content_type == "application/problem+json", content_type
            assert set(answer) == {"type", "title", "status", "detail", "errors"}
            assert answer["status"] == status
        else:
            assert status in (200, 202) and answer["jobId"], answer
            # what was accepted is served back as valid JSON
            strict_json(loop.run_until_complete(get_text(client, answer["statusUrl"])))

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.close()
    assert {202, 400, 422} <= seen, seen  # the generator reaches success and both error kinds
