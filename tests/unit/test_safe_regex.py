"""Patterns from configuration cannot hang a replica: refused shapes, and a measured worst case."""

from __future__ import annotations

import time

import pytest

from botsys.control.safe_regex import (
    MAX_INPUT,
    MAX_PATTERN,
    RegexRejected,
    compile_safe,
    search_bounded,
)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+$",  # nested quantifier: exponential
        r"(a*)*b",
        r"(a|aa)*b",  # alternation under a quantifier: exponential
        r"(a)\1",  # backreference
        r"(?=a)a",  # lookaround
        r"(?<!a)b",
        r"(?(1)a|b)",
        r"a*b*c*d",  # three quantifiers: each multiplies the worst case by the input
        "x" * (MAX_PATTERN + 1),
        "",
        "(",
        5,
    ],
)
def test_refused(pattern):
    with pytest.raises(RegexRejected):
        compile_safe(pattern)


@pytest.mark.parametrize(
    "pattern", [r"^[a-z]+@example\.com$", r"^\d{3}-\d{4}$", r"(ab)+c", r"(a|b)*c", r"^(eu|uk)$"]
)
def test_accepted(pattern):
    compile_safe(pattern)


@pytest.mark.parametrize("pattern", [r".*.*x", r".*?.*?x", r"\w*\w*!", r"a{0,200}a{0,200}b"])
def test_the_worst_accepted_pattern_over_the_longest_input_is_fast(pattern):
    """Two overlapping quantifiers and a search: cubic in the input, so the input is bounded.
    Measured 3-30 ms on a loaded 2-core machine; 0.5 s leaves room for slower CI."""
    compiled = compile_safe(pattern)
    started = time.perf_counter()
    assert not search_bounded(compiled, "a" * MAX_INPUT)
    assert time.perf_counter() - started < 0.5


def test_longer_input_never_matches():
    assert search_bounded(compile_safe("a"), "a" * MAX_INPUT)
    assert not search_bounded(compile_safe("a"), "a" * (MAX_INPUT + 1))
