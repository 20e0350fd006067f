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
    "api": (["--seconds", "5", "--rounds", "3"], ["--seconds", "1", "--rounds", "1"]),
    "webhooks": (["--n", "5000", "--rounds", "5"], ["--n", "200", "--rounds", "1"]),
    "e2e": (
        ["--jobs", "200", "--rounds", "80", "--repeat", "3"],
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
        before = recorded(results).get(name)
        t = time.monotonic()
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], env=env, cwd=ROOT)
        print(f"   ({time.monotonic() - t:.0f} s)", flush=True)
        if proc.returncode != 0 or recorded(results).get(name) in (None, before):
            failed.append(name)  # an exit 0 that wrote no figures failed too
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def recorded(results: Path) -> dict[str, dict]:
    """Each benchmark's figures in ``results``, by name."""
    return json.loads(results.read_text()) if results.exists() else {}


def chart(results: Path, out: Path) -> None:
    """One bar per figure: botsys as a share of its baseline, with the issue's target marked
    (green: met, orange: not yet, grey: context without a target)."""
    try:
        import matplotlib
    except ImportError:
        print("chart: skipped (pip install matplotlib, or the 'bench' extra, to draw it)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = ratios(json.loads(results.read_text()))
    if not bars:
        return
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(bars) + 1.3))
    for y, (_label, value, target) in enumerate(bars):
        color = "#9aa3ad" if target is None else "#3a9d5d" if value >= target else "#d8833b"
        ax.barh(y, value, color=color)
        ax.text(value + 0.03, y, f"{value:.2f}", va="center", fontsize=8)
        if target is not None:
            ax.plot([target, target], [y - 0.4, y + 0.4], color="#222", linewidth=1.5)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars])
    ax.axvline(1.0, color="#888", linewidth=0.8, linestyle=":")
    ax.set_xlabel("botsys ÷ baseline measured in the same run (higher is better; | = target)")
    ax.invert_yaxis()
    ax.set_title("botsys vs its baselines, 2-core machine")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"chart: {out.relative_to(ROOT)}")


def e2e_ratios(e2e: dict) -> list[tuple[str, float, float | None]]:
    out: list[tuple[str, float, float | None]] = []
    for lang, target in (("python", 0.8), ("node", 0.9), ("java", 0.9)):
        if f"{lang}JobsPerS" in e2e:
            ratio = e2e[f"{lang}JobsPerS"] / e2e[f"{lang}BareSpawnsPerS"]
            out.append((f"{lang} bots end to end vs bare spawn", ratio, target))
    rates = e2e.get("scalingJobsPerS")
    if rates and len(rates) == 3:
        for n in (2, 3):
            out.append((f"python jobs/s, {n} replicas vs 1", rates[n - 1] / rates[0], 1.0))
    return out


def ratios(data: dict) -> list[tuple[str, float, float | None]]:
    """(label, ratio, target or None)."""
    out = e2e_ratios(data.get("e2e", {}))
    spawn = data.get("spawn", {})
    for lang in ("python", "node", "java"):
        if lang in spawn:
            out.append(
                (f"{lang} runner spawn (bare ÷ runner time)", 1 / spawn[lang]["ratio"], 1 / 1.1)
            )
    if data.get("api", {}).get("ratio"):
        out.append(("POST /invoke vs bare aiohttp+Redis", data["api"]["ratio"], 0.5))
    if data.get("api", {}).get("wrkInvoke"):
        out.append(("POST /invoke vs bare, wrk load", data["api"]["wrkInvoke"]["ratio"], 0.6))
    if "webhooks" in data:
        out.append(("webhook dispatcher vs bare client", data["webhooks"]["ratio"], 0.8))
    if "engine" in data:
        eng = data["engine"]
        out.append(
            (
                "claim+complete vs raw PING",
                eng["claimCompletePerS"] / eng["rawRoundTripsPerS"],
                None,
            )
        )
    if "compare" in data:
        cmp_ = data["compare"]
        out.append(
            ("no-op drain vs arq", cmp_["botsysNoopJobsPerS"] / cmp_["arqNoopJobsPerS"], 1.0)
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
