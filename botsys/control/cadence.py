"""What a waiting job waits for, when its type's cadence holds it (GET /job): read-only over
the sliding window claim.lua keeps (``{T}:starts``), timed by Redis's clock like the script."""

from __future__ import annotations

from typing import Any

from botsys.config import BotTypeSettings
from botsys.jobs import iso_ms
from botsys.store.connection import Store


async def cadence_hold(store: Store, bt: BotTypeSettings) -> dict[str, Any]:
    """``{"waitingFor": "cadence", "startsAfter": ISO time}`` while the window is full (the
    earliest a job of the type may start), else ``{}``."""
    if not bt.cadence_max:
        return {}
    window_ms = round(bt.cadence_interval_s * 1000)
    redis = store.redis
    seconds, micros = await redis.time()
    now = int(seconds) * 1000 + int(micros) // 1000
    key = store.keys.starts(bt.name)
    # The window as claim.lua sees it: starts with score > now - window.
    recent = await redis.zrangebyscore(key, f"({now - window_ms}", "+inf", withscores=True)
    if len(recent) < bt.cadence_max:
        return {}
    freeing = recent[len(recent) - bt.cadence_max][1]
    return {"waitingFor": "cadence", "startsAfter": iso_ms(int(freeing) + window_ms)}
