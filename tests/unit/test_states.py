"""One word per state (botsys/states.py): members are their strings, so what Redis, Lua, JSON
and metric labels see cannot change with the enum."""

from __future__ import annotations

import json
import re
from pathlib import Path

from botsys.states import RETRYABLE, TERMINAL, DeliveryState, JobState

LUA = Path(__file__).resolve().parents[2] / "botsys" / "store" / "lua"


def test_members_are_their_strings_on_every_wire():
    for state in (*JobState, *DeliveryState):
        assert state == state.value and hash(state) == hash(state.value)
        assert str(state) == f"{state}" == state.value
        assert json.dumps({state: [state]}) == json.dumps({state.value: [state.value]})


def test_the_lifecycle_words_and_their_order():
    assert list(JobState) == [
        "queued",
        "delayed",
        "running",
        "succeeded",
        "failed",
        "timed_out",
        "cancelled",
    ]
    assert TERMINAL == ("succeeded", "failed", "timed_out", "cancelled")
    assert set(RETRYABLE) < set(TERMINAL) and JobState.CANCELLED not in RETRYABLE
    assert list(DeliveryState) == ["pending", "delivered", "dead"]


def test_every_state_the_scripts_write_is_a_member():
    """The scripts name states through their prologue's S table, generated from these enums
    (store/scripts.py); an S.<name> that is no member would be nil in Lua."""
    used = set()
    for script in LUA.glob("*.lua"):
        used |= set(re.findall(r"\bS\.([a-z_]+)", script.read_text()))
    assert {"queued", "running", "cancelled", "pending", "dead"} <= used, "the pattern finds them"
    assert used <= {*JobState, *DeliveryState}, used - {*JobState, *DeliveryState}
