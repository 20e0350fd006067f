"""The capacity settings: documented defaults, and a byte cap that a job can always fit."""

from __future__ import annotations

import pytest

from botsys.config import ConfigError, build_settings, load_settings


def test_capacity_defaults():
    s = load_settings(environ={})
    assert (s.redis.max_connections, s.redis.pool_timeout_s) == (100, 5.0)
    assert (s.engine.max_queued, s.engine.max_queued_bytes) == (50000, 64 << 20)
    assert s.engine.keep_finished == 10000


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"engine": {"max_queued_bytes": 1000}}, "engine.max_queued_bytes = 1000: must be 0"),
        ({"engine": {"keep_finished": 0}}, "engine.keep_finished = 0: must be between 1"),
        ({"redis": {"max_connections": 2}}, "redis.max_connections = 2: must be between 4"),
    ],
)
def test_bad_capacity_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        build_settings(raw)


def test_zero_turns_the_queue_caps_off():
    s = build_settings({"engine": {"max_queued": 0, "max_queued_bytes": 0}})
    assert (s.engine.max_queued, s.engine.max_queued_bytes) == (0, 0)
