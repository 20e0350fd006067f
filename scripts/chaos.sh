#!/usr/bin/env bash
# Chaos run on loopback: a private redis-server (AOF), 3 `botsys serve` replicas and the mock
# webhook, a load loop and a chaos loop (kill -9 / SIGTERM of replicas, kill -9 of Redis and a
# restart from its AOF, CLIENT KILL). Prints a tally every second and a summary; exits 1 if an
# accepted job was lost or never finished. Bounded: --seconds N (default 60) plus the drain.
#   ./scripts/chaos.sh [--seconds N] [--rate JOBS_PER_S] [--seed N] [--keep]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
cd "$ROOT"
"$PY" -m tests.faults.chaos "$@" &
pid=$!
# The Python side owns every process it starts and cleans them up on exit or SIGTERM.
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' INT TERM
trap 'kill -TERM "$pid" 2>/dev/null || true' EXIT
wait "$pid"
