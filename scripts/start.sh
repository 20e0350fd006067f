#!/usr/bin/env bash
# Set up what is missing, then run botsys: the API on http://127.0.0.1:3000 (Swagger at
# /api-docs, dashboard at /admin/queues) and the mock webhook on :5000.
# Uses the embedded in-memory store, or Redis when REDIS_URL is set. Extra arguments go to
# `python -m botsys serve` (e.g. --port 3001). BOTSYS_NO_MOCK=1 skips the mock webhook.
# Stopping it stops everything it started: Ctrl-C, or `kill <pid of start.sh>` (the script
# becomes the server, and the mock dies with the server).
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

# The port serve will use: --port N / --port=N in the arguments, else API_GATEWAY_PORT.
api_port=${API_GATEWAY_PORT:-3000}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
    --port) api_port=${args[i + 1]:-$api_port} ;;
    --port=*) api_port=${args[i]#--port=} ;;
    esac
done
mock_port=${MOCK_WEBHOOK_PORT:-5000}

# A development signing secret, so the mock really checks every webhook's signature. Both
# processes read it from the environment; set your own BOTSYS_WEBHOOK_SECRET to keep one.
if [[ -z ${BOTSYS_WEBHOOK_SECRET:-} ]]; then
    BOTSYS_WEBHOOK_SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
    export BOTSYS_WEBHOOK_SECRET
    say "webhooks: signed with a development secret made for this run"
fi
# The mock on another port must still be reachable past the SSRF guard.
if [[ -z ${BOTSYS_WEBHOOK_ALLOW:-} && $mock_port != 5000 ]]; then
    export BOTSYS_WEBHOOK_ALLOW="localhost:$mock_port,mock-webhook:$mock_port"
fi

# start_mock: the mock webhook in the background, its output on this terminal, dying with its
# parent (PDEATHSIG: after the exec below, the parent is the server). Returns once it listens;
# if it cannot start (a taken port), its own error is on the terminal and the script stops:
# nothing runs half set up.
start_mock() {
    local out tee_pid
    out=$(mktemp)
    setpriv --pdeathsig TERM -- "$PY" -m botsys mock-webhook --port "$mock_port" 2>&1 | tee "$out" &
    tee_pid=$! # tee ends when the mock does
    until grep -q "^mock webhook on" "$out"; do
        if ! kill -0 "$tee_pid" 2>/dev/null; then
            rm -f "$out"
            say "the mock webhook did not start (see above); free port $mock_port, set MOCK_WEBHOOK_PORT, or BOTSYS_NO_MOCK=1"
            exit 1
        fi
        sleep 0.1
    done
    rm -f "$out" # tee holds it open; nothing is left behind
}

if [[ ${BOTSYS_NO_MOCK:-} != 1 ]]; then
    start_mock
fi

base=http://127.0.0.1:$api_port
say "API          $base"
say "Swagger UI   $base/api-docs"
say "dashboard    $base/admin/queues"
say "metrics      $base/metrics"
if [[ ${BOTSYS_NO_MOCK:-} != 1 ]]; then
    say "mock webhook http://localhost:$mock_port (webhookUrl \"http://localhost:$mock_port/hook\"; received: GET /webhooks)"
fi
exec "$PY" -m botsys serve --log-format "${BOTSYS_LOG_FORMAT:-text}" "$@"
