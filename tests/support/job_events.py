"""Waiting for jobs to reach a state by their events channels, as an SSE client does, not by
polling: the scripts publish every state change, so a wait ends on the change itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Iterable

from botsys.jobs import Job
from botsys.queue import JobQueue
from botsys.states import TERMINAL


async def wait_jobs(
    queue: JobQueue,
    ids: Iterable[str],
    states: Collection[str] = TERMINAL,
    *,
    timeout: float = 30.0,
) -> list[Job]:
    """Until every job of ``ids`` is in one of ``states`` (by default a terminal one): the jobs
    as read then, in order. A timeout fails with each job's state."""
    ids = list(ids)
    if not ids:
        return []
    channels = {queue.keys.events_channel(i): i for i in ids}
    done: dict[str, Job] = {}

    async def read(job_id: str) -> None:
        job = await queue.get(job_id)
        if job is not None and job.state in states:
            done[job_id] = job

    # Our own pub/sub connection, not an event hub: closing a hub's reader costs a second
    # with fakeredis, and a test has nothing to share it with.
    pubsub = queue.redis.pubsub()
    try:
        async with asyncio.timeout(timeout):
            await pubsub.subscribe(*channels)
            async for message in pubsub.listen():
                if message["type"] == "subscribe":  # confirmed: a later change will show
                    await read(channels[message["channel"]])
                elif message["type"] == "message" and _is_state(message["data"]):
                    await read(channels[message["channel"]])
                if len(done) == len(channels):
                    return [done[i] for i in ids]
    except TimeoutError:
        jobs = await asyncio.gather(*map(queue.get, ids))
        seen = {i: j.state if j else None for i, j in zip(ids, jobs, strict=True)}
        raise AssertionError(
            f"not all in {sorted(map(str, states))} after {timeout}s: {seen}"
        ) from None
    finally:
        await pubsub.aclose()
    raise AssertionError("the pub/sub connection ended")


def _is_state(data: str) -> bool:
    return json.loads(data).get("type") == "state"
