#!/usr/bin/env bash
# Set up what is missing, then run botsys: the API on http://127.0.0.1:3000 (Swagger at
# /api-docs, dashboard at /admin/queues) and the mock webhook on :5000.
# Uses the embedded in-memory store, or Redis when REDIS_URL is set. Extra arguments go to
# `python -m botsys serve` (e.g. --port 3001). Ctrl-C stops both.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
ensure_runtimes
ensure_venv
cd "$ROOT"

if [[ -n ${REDIS_URL:-} ]]; then
    say "store: Redis at ${REDIS_URL%%@*}$( [[ $REDIS_URL == *@* ]] && echo '@…')"
else
    say "store: embedded in-memory (set REDIS_URL to use Redis and run several replicas)"
fi

mock_pid=
if [[ ${BOTSYS_NO_MOCK:-} != 1 ]]; then
    "$PY" -m botsys mock-webhook --port "${MOCK_WEBHOOK_PORT:-5000}" >/dev/null 2>&1 &
    mock_pid=$!
    trap '[[ -n $mock_pid ]] && kill $mock_pid 2>/dev/null' EXIT
fi
"$PY" -m botsys serve --log-format "${BOTSYS_LOG_FORMAT:-text}" "$@"
