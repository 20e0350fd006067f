"""Commands framed by hiredis are byte-for-byte what redis-py's Python packer sends."""

from __future__ import annotations

import pytest
from redis.asyncio import Connection, ConnectionPool
from redis.exceptions import DataError

from botsys.store.packing import HiredisPacking, use_hiredis_packing
from tests.support.requires import require_module

require_module("hiredis", "pip install 'redis[hiredis]'")


class Packed(HiredisPacking, Connection):
    pass


CASES = [
    ("PING",),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"x"),
    ("EVALSHA", "a" * 40, 1, "botsys:{python}:", '{"replica":"r1"}', "", 0, -3, 12.5, 1e-7),
    ("SET", "é✓ unicode", b"\x00\xff raw bytes", bytearray(b"ba"), memoryview(b"mv")),
    ("SET", "big", "x" * 200_000),
    ("HSET", "k", 2**63, "v", 0.1),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: str(a[0]))
def test_the_frame_is_the_same_bytes(args):
    python, hiredis = Connection(decode_responses=True), Packed(decode_responses=True)
    assert b"".join(hiredis.pack_command(*args)) == b"".join(
        bytes(part) for part in python.pack_command(*args)
    )
    assert len(hiredis.pack_command(*args)) == 1, "one buffer: hiredis did the framing"


@pytest.mark.parametrize("bad", [None, True, object()])
def test_values_redis_py_refuses_are_refused_alike(bad):
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        Packed().pack_command("SET", "k", bad)


def test_another_encoding_keeps_the_python_packer():
    conn = Packed(encoding="latin-1")
    assert conn.pack_command("SET", "k", "é") == Connection(encoding="latin-1").pack_command(
        "SET", "k", "é"
    )


def test_the_pool_makes_packing_connections_of_its_own_kind():
    pool = ConnectionPool.from_url("redis://127.0.0.1:1/0")
    use_hiredis_packing(pool)
    use_hiredis_packing(pool)  # idempotent
    made = pool.make_connection()
    assert isinstance(made, HiredisPacking) and isinstance(made, Connection)
    assert type(made).__mro__.count(HiredisPacking) == 1
