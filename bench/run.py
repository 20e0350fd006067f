"""Run every benchmark, each printing its figure as a ratio against a baseline measured in the
same run, then write bench/results.json and the chart the README shows.

    .venv/bin/python -m bench            # the full run (several minutes on 2 cores)
    .venv/bin/python -m bench --quick    # tiny sizes: a smoke test of the harness (test.sh runs it)
    .venv/bin/python -m bench engine e2e # only some

Absolute numbers are context only: machines here are noisy, ratios are the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHART = ROOT / "docs" / "img" / "benchmarks.png"

# name → (full arguments, quick arguments)
BENCHES = {
    "engine": (["--jobs", "20000"], ["--jobs", "500"]),
    "spawn": (["--n", "40"], ["--n", "2"]),
    "api": (["--seconds", "10"], ["--seconds", "1"]),
    "webhooks": (["--n", "5000", "--rounds", "3"], ["--n", "200", "--rounds", "1"]),
    "e2e": (
        ["--jobs", "200", "--rounds", "40"],
        ["--jobs", "6", "--rounds", "3", "--repeat", "1", "--no-scaling"],
    ),
    "compare": (["--jobs", "20000"], None),  # installs arq from PyPI: not in the quick run
}


def run(names: list[str], quick: bool, results: Path) -> int:
    env = {**os.environ, "BENCH_RESULTS": str(results)}
    failed = []
    for name in names:
        full, small = BENCHES[name]
        args = small if quick else full
        if args is None:
            print(f"== {name}: skipped in --quick")
            continue
        print(f"== {name} {' '.join(args)}", flush=True)
        t = time.monotonic()
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], env=env, cwd=ROOT)
        print(f"   ({time.monotonic() - t:.0f} s)", flush=True)
        if proc.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def chart(results: Path, out: Path) -> None:
    """One bar per figure: botsys as a share of its baseline (1.0 = the baseline's speed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(results.read_text())
    bars = ratios(data)
    if not bars:
        return
    labels, values = zip(*bars, strict=True)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.2))
    ax.barh(labels, values, color=["#3b7dd8" if v >= 0.8 else "#d8833b" for v in values])
    ax.axvline(1.0, color="#444", linewidth=1)
    ax.set_xlabel("botsys ÷ baseline measured in the same run (higher is better)")
    ax.invert_yaxis()
    for y, v in enumerate(values):
        ax.text(v + 0.02, y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_title("botsys vs its baselines, 2-core machine")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"chart: {out.relative_to(ROOT)}")


def ratios(data: dict) -> list[tuple[str, float]]:
    out = []
    e2e = data.get("e2e", {})
    for lang in ("python", "node", "java"):
        if f"{lang}JobsPerS" in e2e:
            out.append(
                (
                    f"{lang} bots end to end vs bare spawn",
                    e2e[f"{lang}JobsPerS"] / e2e[f"{lang}BareSpawnsPerS"],
                )
            )
    spawn = data.get("spawn", {})
    for lang in ("python", "node", "java"):
        if lang in spawn:
            out.append((f"{lang} runner spawn (bare ÷ runner time)", 1 / spawn[lang]["ratio"]))
    if "api" in data and data["api"].get("ratio"):
        out.append(("POST /invoke vs bare aiohttp+Redis", data["api"]["ratio"]))
    if "webhooks" in data:
        out.append(("webhook dispatcher vs bare client", data["webhooks"]["ratio"]))
    if "engine" in data:
        eng = data["engine"]
        out.append(
            (
                "engine claim+complete vs raw PING",
                eng["claimCompletePerS"] / eng["rawRoundTripsPerS"],
            )
        )
    if "compare" in data:
        cmp_ = data["compare"]
        out.append(
            ("no-op drain vs arq (÷10)", cmp_["botsysNoopJobsPerS"] / cmp_["arqNoopJobsPerS"] / 10)
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of: {', '.join(BENCHES)} (default all)"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes; results go to a temp file")
    a = p.parse_args()
    unknown = sorted(set(a.names) - set(BENCHES))
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    names = a.names or list(BENCHES)
    results = Path("/tmp/botsys-bench-quick.json") if a.quick else HERE / "results.json"
    if a.quick and results.exists():
        results.unlink()
    code = run(names, a.quick, results)
    if not a.quick and results.exists():
        chart(results, CHART)
    return code


if __name__ == "__main__":
    sys.exit(main())
