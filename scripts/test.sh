#!/usr/bin/env bash
# Set up what is missing (redis-server, runtimes, the venv, the deploy validators), then run
# every check: ruff, the import-layer test, and the whole pytest suite (unit, integration on a
# real redis-server, runners, webhooks, api, deploy, e2e and fault tests with real processes).
# Arguments go to pytest (e.g. ./scripts/test.sh tests/unit -x). With CI=true a test whose tool,
# module or privilege is missing fails instead of skipping (tests/support/requires.py).
# BOTSYS_TEST_LIGHT=1: a quick local run without the browser and deploy suites (nor chromium and
# the deploy validators they need); .ci/run always runs everything.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
ensure_apt redis-server:redis-server curl:curl cc:gcc
# The launcher links statically when libc.a is there (tests/runners/test_launcher.py).
[[ $(cc -print-file-name=libc.a) == /* ]] || apt_install libc6-dev
light=()
if [[ ${BOTSYS_TEST_LIGHT:-} == 1 ]]; then
    light=(--ignore=tests/browser --ignore=tests/deploy)
    echo "== BOTSYS_TEST_LIGHT=1: skipping tests/browser and tests/deploy"
else
    ensure_apt chromium:chromium chromedriver:chromium-driver
    [[ -d /usr/share/fonts/truetype/liberation ]] || apt_install fonts-liberation
fi
ensure_runtimes
ensure_venv test
cd "$ROOT"
((${#light[@]})) || "$ROOT/scripts/install-deploy-tools.sh"
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
"$PY" -m pytest -p no:cacheprovider "${light[@]}" "$@"
rc=$?
set -e

# pytest's 5 means "no tests collected": never a silent pass.
exit $rc
