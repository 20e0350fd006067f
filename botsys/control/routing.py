"""Bot groups and their routing rules: validation and selection, pure functions.

A group lists member targets (``python/data_analysis``, or a bare type meaning its default
bot) and one rule choosing a member for each job. Selection takes everything that varies as
arguments — the group's sequence number (one Redis counter shared by every replica), the
payload, the UTC minute of the day, the members that exist now — so the same inputs choose the
same member on any replica, and tests need no clock or Redis.

Weighted rules map a point in [0, 1) to a member through the cumulative weights. The point is
the sequence number times the golden ratio, modulo 1 (Fibonacci hashing, in 64-bit integers):
consecutive numbers spread evenly over [0, 1), so over N jobs each member's share is within a
few jobs of ``N * weight / total`` — exact, not a random draw. A sticky A/B test takes the point
from a hash of the sticky value instead: the same value, the same variant, everywhere, always.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import FieldInvalid
from .safe_regex import RegexRejected, compile_safe, search_bounded

ROUND_ROBIN = "ROUND_ROBIN"
PERCENTAGE_BASED = "PERCENTAGE_BASED"
TIME_BASED = "TIME_BASED"
PARAMETER_BASED = "PARAMETER_BASED"
A_B_TEST = "A_B_TEST"
RULES = (ROUND_ROBIN, PERCENTAGE_BASED, TIME_BASED, PARAMETER_BASED, A_B_TEST)
OPERATORS = ("EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "CONTAINS", "REGEX_MATCH", "IN")

GROUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MEMBER = re.compile(r"[a-z][a-z0-9_]{0,31}(/[A-Za-z_][A-Za-z0-9_]{0,63})?")
FIELD_PATH = re.compile(r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}")
HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
MAX_MEMBERS = 32
MAX_WEIGHT = 1_000_000
MAX_BRANCHES = 32
MAX_CONDITIONS = 16
MAX_IN_VALUES = 100
MAX_TEXT = 500  # name, description
MINUTES_A_DAY = 24 * 60

_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / φ
_TWO64 = 1 << 64

# A member (`type` or `type/bot`) → why it cannot run now, or None when it can.
MemberCheck = Callable[[str], "str | None"]


class GroupInvalid(FieldInvalid):
    """A group definition refused (``rule.slots[1].end``)."""


@dataclass(frozen=True)
class Group:
    group_id: str
    name: str
    description: str
    members: tuple[str, ...]
    rule: Mapping[str, Any]  # {"type": RULE, ...its settings}, normalised by validate_group

    @property
    def rule_type(self) -> str:
        return self.rule["type"]

    def to_json(self) -> dict[str, Any]:
        return {
            "groupId": self.group_id,
            "name": self.name,
            "description": self.description,
            "members": list(self.members),
            "rule": dict(self.rule),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Group:
        return cls(
            data["groupId"],
            data.get("name", ""),
            data.get("description", ""),
            tuple(data["members"]),
            data["rule"],
        )


# -- validation ----------------------------------------------------------------------------


def validate_group(group_id: str, body: Mapping[str, Any], member_problem: MemberCheck) -> Group:
    """A group from its JSON definition, or GroupInvalid naming the first bad field."""
    if not isinstance(group_id, str) or not GROUP_ID.fullmatch(group_id):
        raise GroupInvalid("groupId", "1 to 64 letters, digits, '_', '.' or '-'")
    name = _text(body, "name", default=group_id)
    description = _text(body, "description", default="")
    members = _members(body.get("members"), member_problem)
    rule = body.get("rule")
    if not isinstance(rule, Mapping):
        raise GroupInvalid("rule", "an object with a type: " + ", ".join(RULES))
    kind = rule.get("type")
    if kind not in RULES:
        raise GroupInvalid("rule.type", "one of " + ", ".join(RULES))
    return Group(group_id, name, description, members, _RULE_CHECKS[kind](rule, members))


def _text(body: Mapping[str, Any], field: str, default: str) -> str:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise GroupInvalid(field, f"a string of at most {MAX_TEXT} characters")
    return value


def _members(value: Any, member_problem: MemberCheck) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise GroupInvalid("members", "a non-empty list of targets (`type` or `type/bot`)")
    if len(value) > MAX_MEMBERS:
        raise GroupInvalid("members", f"at most {MAX_MEMBERS} members")
    for i, member in enumerate(value):
        field = f"members[{i}]"
        if not isinstance(member, str) or not MEMBER.fullmatch(member):
            raise GroupInvalid(field, "a target: `type` or `type/bot`")
        if member in value[:i]:
            raise GroupInvalid(field, f"{member} is listed twice")
        problem = member_problem(member)
        if problem:
            raise GroupInvalid(field, problem)
    return tuple(value)


def _member_ref(value: Any, field: str, members: Sequence[str]) -> str:
    if value not in members:
        raise GroupInvalid(field, "one of the group's members: " + ", ".join(members))
    return value


def _list(rule: Mapping[str, Any], key: str, limit: int) -> list:
    value = rule.get(key)
    if not isinstance(value, list) or not value:
        raise GroupInvalid(f"rule.{key}", "a non-empty list")
    if len(value) > limit:
        raise GroupInvalid(f"rule.{key}", f"at most {limit} entries")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise GroupInvalid(f"rule.{key}[{i}]", "an object")
    return value


def _check_round_robin(rule: Mapping[str, Any], members: Sequence[str]) -> dict[str, Any]:
    return {"type": ROUND_ROBIN}


def _weights(rule: Mapping[str, Any], key: str, members: Sequence[str]) -> list[dict[str, Any]]:
    entries = _list(rule, key, MAX_MEMBERS)
    out = []
    for i, entry in enumerate(entries):
        field = f"rule.{key}[{i}]"
        member = _member_ref(entry.get("member"), f"{field}.member", members)
        if any(e["member"] == member for e in out):
            raise GroupInvalid(f"{field}.member", f"{member} has a weight already")
        weight = entry.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise GroupInvalid(f"{field}.weight", f"an integer from 0 to {MAX_WEIGHT}")
        out.append({"member": member, "weight": weight})
    if not any(e["weight"] for e in out):
        raise GroupInvalid(f"rule.{key}", "the weights are all 0: no member could be chosen")
    return out


def _check_percentage(rule: Mapping[str, Any], members: Sequence[str]) -> dict[str, Any]:
    return {"type": PERCENTAGE_BASED, "weights": _weights(rule, "weights", members)}


def _check_ab_test(rule: Mapping[str, Any], members: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": A_B_TEST, "variants": _weights(rule, "variants", members)}
    sticky = rule.get("stickyKey")
    if sticky is not None:
        if not isinstance(sticky, str) or not FIELD_PATH.fullmatch(sticky):
            raise GroupInvalid("rule.stickyKey", "a payload field name (dots for nested fields)")
        out["stickyKey"] = sticky
    return out


def _default(rule: Mapping[str, Any], members: Sequence[str]) -> str:
    return _member_ref(rule.get("default"), "rule.default", members)


def minute_of(hh_mm: Any, field: str) -> int:
    m = HH_MM.fullmatch(hh_mm) if isinstance(hh_mm, str) else None
    if m is None:
        raise GroupInvalid(field, "a UTC time HH:MM, 00:00 to 23:59")
    return int(m.group(1)) * 60 + int(m.group(2))


def _check_time(rule: Mapping[str, Any], members: Sequence[str]) -> dict[str, Any]:
    """Slots [start, end) in UTC, sorted by start; a slot whose end is before its start wraps
    midnight (22:00–06:00). No two slots may share a minute."""
    slots = _list(rule, "slots", MAX_BRANCHES)
    covered: dict[int, int] = {}  # minute → slot index
    out = []
    previous_start = -1
    for i, slot in enumerate(slots):
        field = f"rule.slots[{i}]"
        member = _member_ref(slot.get("member"), f"{field}.member", members)
        start = minute_of(slot.get("start"), f"{field}.start")
        end = minute_of(slot.get("end"), f"{field}.end")
        if start == end:
            raise GroupInvalid(f"{field}.end", "the same as start: an empty slot")
        if start <= previous_start:
            raise GroupInvalid(f"{field}.start", "slots must be sorted by start time")
        previous_start = start
        for minute in _slot_minutes(start, end):
            if minute in covered:
                other = covered[minute]
                raise GroupInvalid(f"{field}.start", f"overlaps rule.slots[{other}]")
            covered[minute] = i
        out.append({"member": member, "start": slot["start"], "end": slot["end"]})
    return {"type": TIME_BASED, "slots": out, "default": _default(rule, members)}


def _slot_minutes(start: int, end: int) -> range | list[int]:
    if start < end:
        return range(start, end)
    return [*range(start, MINUTES_A_DAY), *range(0, end)]


def _check_parameter(rule: Mapping[str, Any], members: Sequence[str]) -> dict[str, Any]:
    branches = _list(rule, "branches", MAX_BRANCHES)
    out = []
    for i, branch in enumerate(branches):
        field = f"rule.branches[{i}]"
        member = _member_ref(branch.get("member"), f"{field}.member", members)
        conditions = branch.get("conditions")
        if not isinstance(conditions, list) or not 1 <= len(conditions) <= MAX_CONDITIONS:
            raise GroupInvalid(f"{field}.conditions", f"a list of 1 to {MAX_CONDITIONS} conditions")
        checked = [_condition(c, f"{field}.conditions[{j}]") for j, c in enumerate(conditions)]
        out.append({"member": member, "conditions": checked})
    return {"type": PARAMETER_BASED, "branches": out, "default": _default(rule, members)}


def _condition(cond: Any, field: str) -> dict[str, Any]:
    if not isinstance(cond, Mapping):
        raise GroupInvalid(field, "an object: {field, operator, value}")
    path = cond.get("field")
    if not isinstance(path, str) or not FIELD_PATH.fullmatch(path):
        raise GroupInvalid(f"{field}.field", "a payload field name (dots for nested fields)")
    op = cond.get("operator")
    if op not in OPERATORS:
        raise GroupInvalid(f"{field}.operator", "one of " + ", ".join(OPERATORS))
    value = cond.get("value")
    _check_operand(op, value, f"{field}.value")
    return {"field": path, "operator": op, "value": value}


def _check_operand(op: str, value: Any, field: str) -> None:
    if op in ("GREATER_THAN", "LESS_THAN") and not _is_number(value):
        raise GroupInvalid(field, f"{op} compares with a number")
    if op == "CONTAINS" and not isinstance(value, str | int | float | bool):
        raise GroupInvalid(field, "CONTAINS looks for a string or a scalar")
    if op == "IN" and (not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES):
        raise GroupInvalid(field, f"IN takes a list of 1 to {MAX_IN_VALUES} values")
    if op == "REGEX_MATCH":
        try:
            compile_safe(value)
        except RegexRejected as exc:
            raise GroupInvalid(field, str(exc)) from None


_RULE_CHECKS = {
    ROUND_ROBIN: _check_round_robin,
    PERCENTAGE_BASED: _check_percentage,
    TIME_BASED: _check_time,
    PARAMETER_BASED: _check_parameter,
    A_B_TEST: _check_ab_test,
}


# -- selection -----------------------------------------------------------------------------


def select(
    group: Group, *, seq: int, payload: Any, minute: int, available: Sequence[str]
) -> str | None:
    """The member for one job, or None when no member exists any more.

    ``seq`` counts the group's selections from 1 (shared by every replica); ``minute`` is the
    UTC minute of the day; ``available`` the members that exist now. A member the rule names
    that no longer exists falls back to the rule's default, then to the first that exists."""
    exists = set(available)
    live = [m for m in group.members if m in exists]
    if not live:
        return None
    rule = group.rule
    chosen = _SELECTORS[rule["type"]](group, rule, seq, payload, minute, live)
    if chosen in live:
        return chosen
    default = rule.get("default")
    return default if default in live else live[0]


def _round_robin(group, rule, seq, payload, minute, live) -> str:
    return live[(seq - 1) % len(live)]


def _percentage(group, rule, seq, payload, minute, live) -> str | None:
    return pick_weighted(_live_weights(rule["weights"], live), golden_point(seq))


def _ab_test(group, rule, seq, payload, minute, live) -> str | None:
    point = golden_point(seq)
    key = rule.get("stickyKey")
    if key:
        found, value = field_value(payload, key)
        if found and value is not None:
            point = sticky_point(group.group_id, value)
    return pick_weighted(_live_weights(rule["variants"], live), point)


def _time_based(group, rule, seq, payload, minute, live) -> str:
    for slot in rule["slots"]:
        if slot["member"] in live and in_slot(minute, slot["start"], slot["end"]):
            return slot["member"]
    return rule["default"]


def _parameter(group, rule, seq, payload, minute, live) -> str:
    for branch in rule["branches"]:
        if branch["member"] in live and all(holds(c, payload) for c in branch["conditions"]):
            return branch["member"]
    return rule["default"]


_SELECTORS = {
    ROUND_ROBIN: _round_robin,
    PERCENTAGE_BASED: _percentage,
    TIME_BASED: _time_based,
    PARAMETER_BASED: _parameter,
    A_B_TEST: _ab_test,
}


def _live_weights(entries: Sequence[Mapping[str, Any]], live: Sequence[str]) -> list:
    return [(e["member"], e["weight"]) for e in entries if e["member"] in live and e["weight"]]


def golden_point(seq: int) -> int:
    """The seq-th point of the golden-ratio sequence, as a 64-bit fraction of 1."""
    return (seq * _GOLDEN) % _TWO64


def sticky_point(group_id: str, value: Any) -> int:
    """A point fixed by the sticky value (its JSON form: 7 and "7" are different users)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{group_id}\0{text}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def pick_weighted(weights: Sequence[tuple[str, int]], point: int) -> str | None:
    """The member whose share of [0, 2^64) holds ``point``."""
    total = sum(w for _, w in weights)
    if not total:
        return None
    target = point * total >> 64  # in [0, total)
    for member, weight in weights:
        if target < weight:
            return member
        target -= weight
    return weights[-1][0]


def in_slot(minute: int, start: str, end: str) -> bool:
    s, e = minute_of(start, "start"), minute_of(end, "end")
    return s <= minute < e if s < e else minute >= s or minute < e


# -- conditions ----------------------------------------------------------------------------

_MISSING = object()


def field_value(payload: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted path into the payload's objects."""
    node = payload
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def holds(cond: Mapping[str, Any], payload: Any) -> bool:
    found, actual = field_value(payload, cond["field"])
    op, expected = cond["operator"], cond["value"]
    if not found:  # a missing field equals only null
        return (
            (expected is None) if op == "EQUALS" else (expected is not None and op == "NOT_EQUALS")
        )
    if op == "EQUALS":
        return same_json(actual, expected)
    if op == "NOT_EQUALS":
        return not same_json(actual, expected)
    if op == "GREATER_THAN":
        return _is_number(actual) and actual > expected
    if op == "LESS_THAN":
        return _is_number(actual) and actual < expected
    if op == "IN":
        return any(same_json(actual, v) for v in expected)
    if op == "CONTAINS":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        return isinstance(actual, list) and any(same_json(a, expected) for a in actual)
    return isinstance(actual, str) and search_bounded(compile_safe(expected), actual)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1 and "5" is not 5."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return a == b
