#!/usr/bin/env bash
# Shared by start.sh and test.sh (sourced): install what is missing, quietly and idempotently.
#   ensure_apt PKG...   apt-get install the packages whose commands are missing
#   ensure_venv [EXTRA] create .venv and install botsys (+ extras) when pyproject.toml changed

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/.venv
PY=$VENV/bin/python

say() { echo "botsys setup: $*" >&2; }

_apt_updated=
apt_install() {
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
        say "missing: $* — install them with apt (needs root)"
        return 1
    fi
    local sudo=; [[ $(id -u) -ne 0 ]] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z $_apt_updated ]]; then
        $sudo apt-get update -qq >/dev/null
        _apt_updated=1
    fi
    say "apt-get install $*"
    $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_apt command:package ... — install each package whose command is missing.
ensure_apt() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

ensure_python() {
    if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        say "botsys needs Python ≥ 3.11"
        return 1
    fi
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
}

ensure_venv() {
    local extras=${1:-} stamp
    ensure_python
    [[ -x $PY ]] || { say "creating $VENV"; python3 -m venv "$VENV"; }
    local hash have=""
    hash=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
    stamp="$hash-$extras"
    [[ -f $VENV/.botsys-stamp ]] && have=$(cat "$VENV/.botsys-stamp")
    # Installed for this pyproject.toml with these extras (or with the test extras, a superset)?
    if [[ $have != "$stamp" && ! ($extras == "" && $have == "$hash-test") ]]; then
        say "installing botsys${extras:+[$extras]} into .venv"
        local log
        log=$(mktemp)
        # pip's output is shown only if it fails
        if ! { "$PY" -m pip install -q --disable-pip-version-check --upgrade pip &&
            "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"; } \
            >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            return 1
        fi
        rm -f "$log"
        echo "$stamp" >"$VENV/.botsys-stamp"
    fi
}

# Runtimes the bundled bots need, and the util-linux wrappers the runner uses for limits.
ensure_runtimes() {
    ensure_apt node:nodejs javac:openjdk-17-jdk-headless prlimit:util-linux setpriv:util-linux
    ensure_bot_user
}

# A server running as root runs bots as this unprivileged user (runner.bot_user, docs/BOTS.md).
ensure_bot_user() {
    local user=${BOTSYS_BOT_USER-botsys-bot}
    [[ $(id -u) -eq 0 && -n $user ]] || return 0
    id "$user" >/dev/null 2>&1 && return 0
    say "creating the bot user $user"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
}
