import gc

import pytest

from botsys.heap import FIRST_GENERATION_THRESHOLD, settle_heap


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def in_generations(obj) -> bool:
    return any(o is obj for generation in range(3) for o in gc.get_objects(generation))


def test_settle_heap_freezes_what_is_alive_and_raises_the_first_threshold(restore_gc):
    gc.unfreeze()
    second, third = gc.get_threshold()[1:]
    alive = [[i] for i in range(1000)]  # tracked objects that outlive the call
    assert in_generations(alive[0])
    frozen = settle_heap()
    assert frozen == gc.get_freeze_count() >= len(alive)
    # Frozen: in no generation, so no collection walks them again.
    assert not in_generations(alive[0]) and not in_generations(alive)
    assert gc.get_threshold() == (FIRST_GENERATION_THRESHOLD, second, third)
    after = [[i] for i in range(10)]  # what comes later is collected as usual
    assert in_generations(after[0])
