"""Redis Cluster's slot rule, as far as the tests need it: the hash tag of a key."""

from __future__ import annotations


def hash_tag(key: str) -> str:
    """What Cluster hashes: the text inside the first {...}, if not empty; else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def assert_one_slot(script: str, keys: list[str], prefix: str | None) -> None:
    tags = {hash_tag(k) for k in keys}
    if prefix is not None:
        tags.add(hash_tag(prefix))
    assert len(tags) <= 1, f"{script}.lua called with keys of several slots: {keys} {prefix}"
