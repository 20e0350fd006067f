#!/usr/bin/env bash
# Set up what is missing (redis-server, runtimes, the venv, the deploy validators), then run
# every check: ruff, the import-layer test, and the whole pytest suite (unit, integration on a
# real redis-server, runners, webhooks, api, deploy, e2e and fault tests with real processes).
# Arguments go to pytest (e.g. ./scripts/test.sh tests/unit -x).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
ensure_apt redis-server:redis-server chromium:chromium chromedriver:chromium-driver
[[ -d /usr/share/fonts/truetype/liberation ]] || apt_install fonts-liberation
ensure_runtimes
ensure_venv test
cd "$ROOT"
"$ROOT/scripts/install-deploy-tools.sh"
# ensure_runtimes created botsys-bot: the default bot user of a root server, and the run_as tests'.

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check . >/dev/null || { "$VENV/bin/ruff" format --check .; exit 1; }

if [[ $# -eq 0 ]]; then
    echo "== bench smoke (tiny sizes; keeps the harness from rotting, not a timing gate)"
    log=$(mktemp)
    "$PY" -m bench --quick >"$log" 2>&1 || { cat "$log"; echo "bench smoke failed"; exit 1; }
    rm -f "$log"
fi

echo "== pytest"
set +e
"$PY" -m pytest -p no:cacheprovider "$@"
rc=$?
set -e

# pytest's 5 means "no tests collected": never a silent pass.
exit $rc
