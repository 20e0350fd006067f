"""Garbage-collector settings for a long-running server process (``serve`` applies them once
startup is done; the benchmarks apply them too, to measure what a deployment gets).

Two costs of CPython's defaults, measured on ``serve`` and in ``bench/webhooks.py``:

- Startup leaves ~60k tracked objects (modules, the app, clients) that live as long as the
  process, and every full collection walks them all: a 12-15 ms stall of every request and
  bot in flight. Frozen, collections skip them.
- A first-generation threshold of 700 net allocations is below what one batch of claimed
  webhook deliveries or a burst of requests allocates, so collections run that find nothing
  to free: 172 of them per 5,000 deliveries, ~8 µs of CPU per delivery (a seventh of the
  dispatcher's own cost). At 10,000 there are none; the largest pause stays ~2 ms, and at
  most that many young objects wait for a collection.

Re-measured for issue 20 (bench/webhooks.py's dispatcher, settings toggled per round in one
process, 10 rounds): without either, +12 % CPU per delivery (11 µs of it in collections);
freeze alone +6 %, the threshold alone +2 %. A full collection of a fresh app's heap takes
13-19 ms unfrozen and ~0 frozen.
"""

from __future__ import annotations

import gc

FIRST_GENERATION_THRESHOLD = 10_000


def settle_heap() -> int:
    """Collect, freeze what is alive (it stays for the process's life), raise the first
    threshold. Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, second, third)
    return gc.get_freeze_count()
