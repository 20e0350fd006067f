"""data_analysis: descriptive statistics over a list of numbers.

Payload: {"numbers": [1, 2.5, ...]}  (required, at least one number)
Result:  {"count", "sum", "mean", "median", "stdev", "min", "max"}
         stdev is the sample standard deviation (null for a single number).
Bad input (missing list, non-numbers) exits 2 with the reason on stderr.
"""

import json
import statistics
import sys


def numbers_from(payload):
    numbers = payload.get("numbers") if isinstance(payload, dict) else None
    if not isinstance(numbers, list) or not numbers:
        sys.stderr.write('payload must be {"numbers": [ ...at least one number... ]}\n')
        sys.exit(2)
    bad = [n for n in numbers if isinstance(n, bool) or not isinstance(n, int | float)]
    if bad:
        sys.stderr.write(f"payload.numbers holds non-numbers, e.g. {bad[0]!r}\n")
        sys.exit(2)
    return numbers


def main():
    envelope = json.load(sys.stdin)
    numbers = numbers_from(envelope.get("payload"))
    print(json.dumps({"progress": 50}), flush=True)
    stats = {
        "count": len(numbers),
        "sum": sum(numbers),
        "mean": statistics.fmean(numbers),
        "median": statistics.median(numbers),
        "stdev": statistics.stdev(numbers) if len(numbers) > 1 else None,
        "min": min(numbers),
        "max": max(numbers),
    }
    print(json.dumps({"progress": 100}), flush=True)
    print(json.dumps({"result": stats}), flush=True)


if __name__ == "__main__":
    main()
