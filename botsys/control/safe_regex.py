"""Regular expressions from configuration that cannot hang a replica.

Python's ``re`` backtracks: ``(a+)+$`` takes exponential time, and a request's payload chooses
the input. So a pattern is accepted only without the shapes that backtrack badly — a
quantifier or an alternation inside a quantified group, backreferences, lookarounds — with at
most ``MAX_REPEATS`` quantifiers, and the input is bounded: the worst accepted pattern over the
longest accepted input runs in milliseconds (tests/unit/test_safe_regex.py measures it).
"""

from __future__ import annotations

import re
from functools import lru_cache

try:  # the parser's module name since Python 3.11
    from re import _constants as c
    from re import _parser as parser
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as c  # type: ignore[no-redef]
    import sre_parse as parser  # type: ignore[no-redef]

MAX_PATTERN = 200
MAX_INPUT = 256  # characters: a longer value never matches
MAX_REPEATS = 2  # each one multiplies the worst case by the input's length

_REPEATS = {c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)}
_REFUSED = {
    c.GROUPREF: "backreferences",
    c.GROUPREF_EXISTS: "conditional groups",
    c.ASSERT: "lookarounds",
    c.ASSERT_NOT: "lookarounds",
}


class RegexRejected(ValueError):
    pass


@lru_cache(maxsize=512)
def compile_safe(pattern: object) -> re.Pattern:
    """The compiled pattern, or RegexRejected saying why it is not accepted."""
    if not isinstance(pattern, str) or not 1 <= len(pattern) <= MAX_PATTERN:
        raise RegexRejected(f"a regular expression of 1 to {MAX_PATTERN} characters")
    try:
        parsed = parser.parse(pattern)
    except re.error as exc:
        raise RegexRejected(f"invalid regular expression: {exc}") from None
    repeats = _check(parsed, inside_repeat=False)
    if repeats > MAX_REPEATS:
        raise RegexRejected(f"at most {MAX_REPEATS} quantifiers (+, *, {{n,m}}, ?)")
    return re.compile(pattern)


def search_bounded(compiled: re.Pattern, text: str) -> bool:
    return len(text) <= MAX_INPUT and compiled.search(text) is not None


def _check(items, inside_repeat: bool) -> int:
    """Raise for a refused construct; return how many quantifiers there are."""
    count = 0
    for op, arg in items:
        if op in _REFUSED:
            raise RegexRejected(f"{_REFUSED[op]} are not allowed (they can make matching slow)")
        if op in _REPEATS:
            if inside_repeat:
                raise RegexRejected("a quantifier inside a quantified group can backtrack badly")
            count += 1 + _check(arg[2], inside_repeat=True)
        elif op == c.BRANCH:
            if inside_repeat:
                raise RegexRejected("an alternation inside a quantified group can backtrack badly")
            count += sum(_check(branch, inside_repeat) for branch in arg[1])
        elif op == c.SUBPATTERN:
            count += _check(arg[-1], inside_repeat)
        elif op == getattr(c, "ATOMIC_GROUP", None):
            count += _check(arg, inside_repeat)
    return count
