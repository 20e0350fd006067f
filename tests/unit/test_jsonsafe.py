"""botsys.jsonsafe: strict JSON both ways, and the path of what JSON cannot hold."""

from __future__ import annotations

import pytest

from botsys import jsonsafe


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": [1, float("-inf")]}])
def test_dumps_refuses_non_finite_numbers(value):
    with pytest.raises(ValueError):
        jsonsafe.dumps(value)
    with pytest.raises(ValueError):
        jsonsafe.compact(value)


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]"])
def test_loads_refuses_the_constants(text):
    with pytest.raises(ValueError, match="not valid JSON"):
        jsonsafe.loads(text)


@pytest.mark.parametrize(
    "value, path, words",
    [
        (float("nan"), "body", "number out of range"),
        ({"a": [1, {"b": float("inf")}]}, "p.a[1].b", "number out of range"),
        ({"a": "ok\ud800"}, "p.a", "lone surrogate"),
        ({"x": {"\udfff": 1}}, "p.x", "key contains a lone surrogate"),
        ([[[[1]]]], "p[0][0]", "nested deeper than 2 levels"),
    ],
)
def test_problem_in_names_the_path(value, path, words):
    root = "" if path == "body" else "p"
    found = jsonsafe.problem_in(value, root, max_depth=2 if path == "p[0][0]" else 100)
    assert found is not None and found[0] == path and words in found[1], found


@pytest.mark.parametrize(
    "value", [{"emoji": "😀", "n": 1e308, "neg": -0.0, "big": 10**100}, [], "", None, True]
)
def test_problem_in_accepts_what_json_can_hold(value):
    assert jsonsafe.problem_in(value, "p") is None
