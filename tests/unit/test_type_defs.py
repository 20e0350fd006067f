"""Bot type definitions (control/types.py): validation names the field; the effective
settings inherit the runtime's command and sandbox."""

from __future__ import annotations

import pytest

from botsys.control.types import Cadence, TypeInvalid, from_settings, validate
from tests.conftest import make_settings

RUNTIMES = make_settings().bot_types


def test_a_configured_type_round_trips_through_its_seed():
    python = RUNTIMES["python"]
    seed = from_settings(python)
    assert seed.runtime == "python" and seed.cadence is None and seed.retry_attempts == 0
    assert seed.settings(python) == python


def test_a_new_type_inherits_its_runtime():
    d = validate({"runtime": "java", "limit": 1, "retryAttempts": 2}, "batch", RUNTIMES)
    s = d.settings(RUNTIMES["java"])
    java = RUNTIMES["java"]
    assert (s.name, s.runtime, s.command, s.compile, s.extension) == (
        "batch",
        "java",
        java.command,
        java.compile,
        ".java",
    )
    assert (s.limit, s.max_attempts, s.memory_mb) == (1, 3, java.memory_mb)


def test_an_allow_list_without_the_default_bot_defaults_to_its_first():
    d = validate({"runtime": "python", "bots": ["hello", "data_analysis"]}, "t", RUNTIMES)
    assert d.settings(RUNTIMES["python"]).default_bot == "hello"


def test_patch_changes_only_what_it_names():
    base = validate({"runtime": "python", "limit": 2, "description": "x"}, "t", RUNTIMES)
    patched = validate({"cadence": {"max": 3, "intervalS": 0.5}}, "t", RUNTIMES, base=base)
    assert (patched.limit, patched.description) == (2, "x")
    assert patched.cadence == Cadence(3, 0.5, "queue")
    assert validate({"cadence": None}, "t", RUNTIMES, base=patched).cadence is None


@pytest.mark.parametrize(
    "body, field",
    [
        ([], "body"),
        ({}, "runtime"),
        ({"runtime": "python", "name": "other"}, "name"),
        ({"runtime": "python", "timeoutMs": 3_600_001}, "timeoutMs"),
        (
            {"runtime": "python", "cadence": {"max": 1, "intervalS": float("nan")}},
            "cadence.intervalS",
        ),
        ({"runtime": "python", "cadence": {"max": 1.5, "intervalS": 1}}, "cadence.max"),
        ({"runtime": "python", "cadence": {"max": 1, "intervalS": 1, "x": 1}}, "cadence.x"),
        ({"runtime": "python", "cadence": [1]}, "cadence"),
        ({"runtime": "python", "description": 5}, "description"),
    ],
)
def test_invalid_fields_are_named(body, field):
    with pytest.raises(TypeInvalid) as err:
        validate(body, "t", RUNTIMES)
    assert err.value.field == field
