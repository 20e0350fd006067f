"""Routing rules (botsys/control/routing.py): validation names the field, selection is exact."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botsys.control.routing import (
    GroupInvalid,
    holds,
    in_slot,
    select,
    validate_group,
)

MEMBERS = ["python/simulate", "node/process_api", "java"]


def exists(member: str) -> str | None:
    return None if member in MEMBERS or member == "python" else f"no such bot {member}"


def group(rule: dict, members=MEMBERS, gid="g1"):
    return validate_group(gid, {"members": members, "rule": rule}, exists)


def refused(body: dict, gid="g1") -> GroupInvalid:
    with pytest.raises(GroupInvalid) as info:
        validate_group(gid, body, exists)
    return info.value


def pick(g, seq=1, payload=None, minute=0, available=MEMBERS):
    return select(g, seq=seq, payload=payload or {}, minute=minute, available=available)


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"members": [], "rule": {"type": "ROUND_ROBIN"}}, "members"),
        ({"members": ["python/nope"], "rule": {"type": "ROUND_ROBIN"}}, "members[0]"),
        ({"members": ["Python!"], "rule": {"type": "ROUND_ROBIN"}}, "members[0]"),
        ({"members": ["java", "java"], "rule": {"type": "ROUND_ROBIN"}}, "members[1]"),
        ({"members": ["java"], "rule": {"type": "RANDOM"}}, "rule.type"),
        ({"members": ["java"]}, "rule"),
        (
            {"members": MEMBERS, "rule": {"type": "PERCENTAGE_BASED", "weights": []}},
            "rule.weights",
        ),
        (
            {
                "members": MEMBERS,
                "rule": {
                    "type": "PERCENTAGE_BASED",
                    "weights": [{"member": "java", "weight": 0}, {"member": "java", "weight": 1}],
                },
            },
            "rule.weights[1].member",
        ),
        (
            {
                "members": MEMBERS,
                "rule": {"type": "PERCENTAGE_BASED", "weights": [{"member": "java", "weight": 0}]},
            },
            "rule.weights",
        ),
        (
            {
                "members": MEMBERS,
                "rule": {"type": "A_B_TEST", "variants": [{"member": "java", "weight": -1}]},
            },
            "rule.variants[0].weight",
        ),
        (
            {
                "members": MEMBERS,
                "rule": {"type": "A_B_TEST", "variants": [{"member": "node", "weight": 1}]},
            },
            "rule.variants[0].member",
        ),
        (
            {
                "members": MEMBERS,
                "rule": {
                    "type": "TIME_BASED",
                    "slots": [{"member": "java", "start": "9:00", "end": "10:00"}],
                    "default": "java",
                },
            },
            "rule.slots[0].start",
        ),
        (
            {
                "members": MEMBERS,
                "rule": {
                    "type": "TIME_BASED",
                    "slots": [{"member": "java", "start": "09:00", "end": "10:00"}],
                },
            },
            "rule.default",
        ),
    ],
)
def test_invalid_groups_name_the_field(body, field):
    assert refused(body).field == field


def slots(*spans):
    return {
        "members": MEMBERS,
        "rule": {
            "type": "TIME_BASED",
            "slots": [{"member": "java", "start": s, "end": e} for s, e in spans],
            "default": "java",
        },
    }


def test_time_slots_must_be_sorted_and_apart():
    assert refused(slots(("10:00", "12:00"), ("08:00", "09:00"))).field == "rule.slots[1].start"
    overlap = refused(slots(("08:00", "10:00"), ("09:59", "11:00")))
    assert overlap.field == "rule.slots[1].start" and "rule.slots[0]" in overlap.message
    # a slot wrapping midnight overlaps an early-morning one
    assert refused(slots(("05:00", "07:00"), ("22:00", "05:01"))).field == "rule.slots[1].start"
    assert refused(slots(("08:00", "08:00"))).field == "rule.slots[0].end"
    validate_group("g", slots(("05:00", "07:00"), ("22:00", "05:00")), exists)  # touching: ok


def branches(*conditions, default="java"):
    return {
        "members": MEMBERS,
        "rule": {
            "type": "PARAMETER_BASED",
            "branches": [{"member": "node/process_api", "conditions": list(conditions)}],
            "default": default,
        },
    }


@pytest.mark.parametrize(
    "cond, field",
    [
        ({"field": "x", "operator": "LIKE", "value": 1}, "operator"),
        ({"field": "", "operator": "EQUALS", "value": 1}, "field"),
        ({"field": "x", "operator": "GREATER_THAN", "value": "5"}, "value"),
        ({"field": "x", "operator": "IN", "value": 5}, "value"),
        ({"field": "x", "operator": "REGEX_MATCH", "value": "(unclosed"}, "value"),
        ({"field": "x", "operator": "REGEX_MATCH", "value": "(a+)+$"}, "value"),
        ({"field": "x", "operator": "REGEX_MATCH", "value": "(a|aa)*b"}, "value"),
        ({"field": "x", "operator": "REGEX_MATCH", "value": r"(a)\1"}, "value"),
    ],
)
def test_invalid_conditions_name_the_field(cond, field):
    assert refused(branches(cond)).field == f"rule.branches[0].conditions[0].{field}"


def test_a_valid_group_round_trips_as_json():
    g = group({"type": "A_B_TEST", "variants": [{"member": "java", "weight": 1}], "stickyKey": "u"})
    assert g.to_json()["rule"] == {
        "type": "A_B_TEST",
        "variants": [{"member": "java", "weight": 1}],
        "stickyKey": "u",
    }
    assert g.to_json()["name"] == "g1"


# -- selection -----------------------------------------------------------------------------


def test_round_robin_cycles_through_the_members_in_order():
    g = group({"type": "ROUND_ROBIN"})
    assert [pick(g, seq) for seq in range(1, 7)] == MEMBERS * 2


def test_round_robin_skips_members_that_no_longer_exist():
    g = group({"type": "ROUND_ROBIN"})
    live = ["python/simulate", "java"]
    assert [pick(g, seq, available=live) for seq in range(1, 5)] == live * 2
    assert pick(g, 1, available=[]) is None


@pytest.mark.parametrize("weights", [(70, 20, 10), (1, 1, 1), (1, 0, 999), (33, 33, 34)])
def test_weights_are_exact_within_two_percent_over_10000(weights):
    rule = {
        "type": "PERCENTAGE_BASED",
        "weights": [{"member": m, "weight": w} for m, w in zip(MEMBERS, weights, strict=True)],
    }
    g = group(rule)
    n = 10_000
    counts = Counter(pick(g, seq) for seq in range(1, n + 1))
    for member, weight in zip(MEMBERS, weights, strict=True):
        expected = n * weight / sum(weights)
        assert abs(counts[member] - expected) <= 0.02 * n, (member, counts)
        # much better than 2 %: the golden-ratio sequence is within a few jobs of exact
        assert abs(counts[member] - expected) <= 10, (member, counts)


def test_any_window_of_consecutive_selections_is_balanced():
    """Not only the total: each replica's interleaved share of the counter is balanced too."""
    g = group(
        {
            "type": "PERCENTAGE_BASED",
            "weights": [
                {"member": "java", "weight": 1},
                {"member": "python/simulate", "weight": 1},
            ],
        }
    )
    for start in (1, 5000, 123_456_789):
        window = Counter(pick(g, seq) for seq in range(start, start + 1000))
        assert abs(window["java"] - 500) <= 5, window


def test_ab_test_is_sticky_per_key_and_weighted_over_keys():
    g = group(
        {
            "type": "A_B_TEST",
            "variants": [
                {"member": "java", "weight": 80},
                {"member": "node/process_api", "weight": 20},
            ],
            "stickyKey": "user.id",
        }
    )
    # the same key: the same variant, whatever the sequence number (replica, restart)
    for user in ("u1", "u2", 42, "ünï"):
        chosen = {pick(g, seq, {"user": {"id": user}}) for seq in range(1, 50)}
        assert len(chosen) == 1
    counts = Counter(pick(g, 1, {"user": {"id": f"user-{i}"}}) for i in range(10_000))
    assert abs(counts["java"] - 8000) <= 300, counts  # hash-spread: a few % at most
    # 7 and "7" are different users; no key: the exact weighted sequence
    assert Counter(pick(g, seq, {}) for seq in range(1, 1001))["java"] in range(795, 806)


def test_ab_test_assignment_is_stable_across_versions():
    """A hash of (group, value), never Python's salted hash(): restarts keep assignments."""
    g = group(
        {
            "type": "A_B_TEST",
            "variants": [
                {"member": "java", "weight": 1},
                {"member": "node/process_api", "weight": 1},
            ],
            "stickyKey": "u",
        }
    )
    assert [pick(g, 1, {"u": f"k{i}"}) for i in range(6)] == [
        pick(g, 99, {"u": f"k{i}"}) for i in range(6)
    ]
    from botsys.control.routing import sticky_point

    assert sticky_point("g1", "k0") == int.from_bytes(
        __import__("hashlib").sha256(b'g1\x00"k0"').digest()[:8], "big"
    )


def test_time_based_slots_wrap_midnight():
    g = group(
        {
            "type": "TIME_BASED",
            "slots": [
                {"member": "python/simulate", "start": "08:00", "end": "18:00"},
                {"member": "node/process_api", "start": "22:00", "end": "06:00"},
            ],
            "default": "java",
        }
    )
    at = {
        "07:59": "java",
        "08:00": "python/simulate",
        "17:59": "python/simulate",
        "18:00": "java",
        "22:00": "node/process_api",
        "23:59": "node/process_api",
        "00:00": "node/process_api",
        "05:59": "node/process_api",
        "06:00": "java",
    }
    for hh_mm, member in at.items():
        h, m = map(int, hh_mm.split(":"))
        assert pick(g, minute=h * 60 + m) == member, hh_mm
    # the slot's member gone: the default
    assert pick(g, minute=9 * 60, available=["java", "node/process_api"]) == "java"


def test_in_slot_bounds():
    assert in_slot(0, "23:00", "01:00") and not in_slot(60, "23:00", "01:00")
    assert in_slot(23 * 60, "23:00", "01:00") and not in_slot(22 * 60 + 59, "23:00", "01:00")


@pytest.mark.parametrize(
    "op, value, payload, expected",
    [
        ("EQUALS", "eu", {"x": "eu"}, True),
        ("EQUALS", 5, {"x": 5.0}, True),
        ("EQUALS", 5, {"x": "5"}, False),  # no loose equality
        ("EQUALS", 1, {"x": True}, False),
        ("EQUALS", None, {}, True),  # a missing field equals only null
        ("EQUALS", "eu", {}, False),
        ("NOT_EQUALS", "eu", {"x": "us"}, True),
        ("NOT_EQUALS", "eu", {}, True),
        ("GREATER_THAN", 10, {"x": 11}, True),
        ("GREATER_THAN", 10, {"x": "11"}, False),
        ("GREATER_THAN", 10, {}, False),
        ("LESS_THAN", 10, {"x": 9.5}, True),
        ("LESS_THAN", 10, {"x": True}, False),
        ("CONTAINS", "vip", {"x": "a vip user"}, True),
        ("CONTAINS", "vip", {"x": ["vip", "b"]}, True),
        ("CONTAINS", "vip", {"x": 5}, False),
        ("IN", ["eu", "uk"], {"x": "uk"}, True),
        ("IN", ["eu", "uk"], {"x": "us"}, False),
        ("REGEX_MATCH", r"^[a-z]+@example\.com$", {"x": "bob@example.com"}, True),
        ("REGEX_MATCH", r"^[a-z]+@example\.com$", {"x": "bob@evil.com"}, False),
        ("REGEX_MATCH", "a", {"x": "a" * 257}, False),  # longer than the bound: no match
        ("REGEX_MATCH", "a", {"x": 1}, False),
    ],
)
def test_conditions(op, value, payload, expected):
    assert holds({"field": "x", "operator": op, "value": value}, payload) is expected


def test_parameter_based_takes_the_first_branch_that_holds_else_the_default():
    g = validate_group(
        "p",
        {
            "members": MEMBERS,
            "rule": {
                "type": "PARAMETER_BASED",
                "branches": [
                    {
                        "member": "node/process_api",
                        "conditions": [
                            {"field": "order.region", "operator": "EQUALS", "value": "eu"},
                            {"field": "order.total", "operator": "GREATER_THAN", "value": 100},
                        ],
                    },
                    {
                        "member": "python/simulate",
                        "conditions": [
                            {"field": "order.region", "operator": "IN", "value": ["eu"]}
                        ],
                    },
                ],
                "default": "java",
            },
        },
        exists,
    )
    assert pick(g, payload={"order": {"region": "eu", "total": 500}}) == "node/process_api"
    assert pick(g, payload={"order": {"region": "eu", "total": 5}}) == "python/simulate"
    assert pick(g, payload={"order": {"region": "us"}}) == "java"
    assert pick(g, payload={"order": "not an object"}) == "java"
    # the default gone: the first member that exists
    assert pick(g, payload={}, available=["node/process_api"]) == "node/process_api"


@settings(max_examples=25, deadline=None)
@given(
    weights=st.lists(st.integers(0, 1000), min_size=1, max_size=3).filter(any),
    start=st.integers(1, 2**40),
)
def test_any_weights_from_any_point_of_the_counter_are_within_two_percent(weights, start):
    """Whatever the weights and wherever the shared counter stands (restarts never reset it)."""
    members = MEMBERS[: len(weights)]
    g = group(
        {
            "type": "PERCENTAGE_BASED",
            "weights": [{"member": m, "weight": w} for m, w in zip(members, weights, strict=True)],
        },
        members=members,
    )
    n = 10_000
    counts = Counter(pick(g, seq, available=members) for seq in range(start, start + n))
    for member, weight in zip(members, weights, strict=True):
        assert abs(counts[member] - n * weight / sum(weights)) <= 0.02 * n, (weights, counts)
