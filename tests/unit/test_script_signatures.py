"""Scripts name their keys and arguments once, in their header; callers give them by name."""

from __future__ import annotations

import re

import pytest

from botsys.states import DeliveryState, JobState
from botsys.store.keys import Keys, TypeKeys
from botsys.store.scripts import LUA_DIR, STANDALONE, ScriptCallError, Signature, load_source
from tests.support.slots import assert_one_slot, hash_tag

SCRIPTS = sorted(p.stem for p in LUA_DIR.glob("*.lua") if p.stem != "lib")
CLAIM = Signature.parse("claim", "-- KEYS: queue meta\n-- ARGV: prefix now want\n")


def test_the_header_declares_keys_and_args_in_order():
    assert CLAIM.keys == ("queue", "meta") and CLAIM.args == ("prefix", "now", "want")
    rest = Signature.parse("heartbeat", "-- KEYS: active\n-- ARGV: now leases...\n")
    assert rest.args == ("now",) and rest.rest == "leases"
    assert rest.bind({"active": "a"}, {}).args({"now": 5, "leases": ["j", "t"]}) == [5, "j", "t"]


def test_keys_and_args_are_ordered_by_the_declaration():
    bound = CLAIM.bind({"meta": "m", "queue": "q"}, {"prefix": "p"})
    assert bound.keys == ["q", "m"] and bound.args({"want": 3, "now": ""}) == ["p", "", 3]
    assert bound.takes_now
    keys = Keys("x").of("python")
    assert CLAIM.bind(keys, {}).keys == [keys.queue, keys.meta]  # an object: by attribute


@pytest.mark.parametrize(
    "keys, bound, given, wrong",
    [
        ({"queue": "q"}, {}, {"prefix": 1, "now": 1, "want": 1}, "missing ['meta']"),
        ({"queue": "q", "meta": "m", "x": "x"}, {}, {}, "unexpected ['x']"),
        ({"queue": "q", "meta": "m"}, {"bogus": 1}, {}, "unexpected ['bogus']"),
        ({"queue": "q", "meta": "m"}, {}, {"prefix": 1, "now": 1}, "missing ['want']"),
        ({"queue": "q", "meta": "m"}, {"prefix": 1}, {"now": 1, "wants": 1}, "missing ['want']"),
        ({"queue": "q", "meta": "m"}, {"prefix": 1}, {"now": 1, "want": 1, "x": 1}, "['x']"),
    ],
)
def test_a_missing_or_unexpected_name_fails_the_call(keys, bound, given, wrong):
    with pytest.raises(ScriptCallError, match=re.escape(wrong)):
        CLAIM.bind(keys, bound).args(given)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_declares_its_keys_args_and_replies(name):
    source, sig = load_source(name)
    assert sig.keys and sig.args, f"{name}.lua declares no -- KEYS: / -- ARGV: line"
    if name not in STANDALONE:  # a bot type's keys: TypeKeys names them, the prefix is given
        assert set(sig.keys) <= set(TypeKeys.__dataclass_fields__) - {"prefix"}
        assert "prefix" in sig.args or "key(" not in _body(name), "data keys need the prefix"
    assert "KEYS[" not in source.split("\n", 2)[2].replace("= KEYS[", ""), "keys only by name"
    assert not re.search(r"ARGV\[\d", _body(name)), f"{name}.lua reads ARGV by position"


def _body(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


STATE = "|".join(s.value for s in (*JobState, *DeliveryState))


@pytest.mark.parametrize("name", [*SCRIPTS, "lib"])
def test_no_script_spells_a_state_itself(name):
    """States come from states.py through the prologue's S table (S.queued, S.dead...)."""
    code = "\n".join(line.split("--")[0] for line in _body(name).splitlines())
    assert not re.findall(rf"""['"]({STATE})['"]""", code), f"{name}.lua: use S.<state>"


def test_the_slot_check_sees_a_key_of_another_slot():
    keys = Keys("botsys").of("python")
    assert hash_tag(keys.queue) == hash_tag(keys.prefix) == "python"
    assert_one_slot("claim", [keys.queue, keys.meta], keys.prefix)
    with pytest.raises(AssertionError, match="several slots"):
        assert_one_slot("claim", [keys.queue, Keys("botsys").of("node").meta], None)
    with pytest.raises(AssertionError, match="several slots"):
        assert_one_slot("claim", [keys.queue], Keys("botsys").type_prefix("node"))
