"""simulate: the seed's simulated Python workload.

Payload (all optional): {"durationMs": 2000..5000 random by default, "failureRate": 0.05}.

Fails (exit 1) with probability failureRate before doing anything, as the seed did; otherwise
sleeps durationMs, reporting progress 25/50/75/100, and returns a result.
"""

import json
import platform
import random
import sys
import time
from datetime import UTC, datetime


def emit(event):
    print(json.dumps(event), flush=True)


def number(payload, key, default, lo, hi):
    value = payload.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        sys.exit(f"payload.{key} must be a number between {lo} and {hi}, got {value!r}")
    return value


def main():
    envelope = json.load(sys.stdin)
    payload = envelope.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    duration_ms = number(payload, "durationMs", random.uniform(2000, 5000), 0, 3_600_000)
    failure_rate = number(payload, "failureRate", 0.05, 0, 1)
    started = time.monotonic()
    emit({"log": f"python simulate: {duration_ms:.0f} ms, failure rate {failure_rate}"})
    if random.random() < failure_rate:
        sys.exit("Simulated python bot execution error")
    for percent in (25, 50, 75, 100):
        time.sleep(duration_ms / 4000)
        emit({"progress": percent})
    result = {
        "botType": envelope.get("botType", "python"),
        "bot": "simulate",
        "processed": True,
        "language": "Python",
        "version": platform.python_version(),
        "input": payload,
        "attempt": envelope.get("attempt"),
        "executionTimeMs": round((time.monotonic() - started) * 1000, 1),
        "processedAt": datetime.now(UTC).isoformat(),
    }
    emit({"result": result})


if __name__ == "__main__":
    main()
