#!/usr/bin/env bash
# Refresh the committed dashboard screenshots (docs/img/dashboard.png, docs/img/dashboard-job.png).
#
# Runs the browser test that builds a realistic scene (python and node jobs: succeeded, failed,
# one running, webhooks delivered and failing) against a real `serve` + redis-server on
# loopback, and asks it to also write its overview and job-detail shots to docs/img.
# Needs what the browser tests need: Debian chromium, redis-server, playwright in the venv.
#
# Usage: scripts/screenshot.sh [output dir, default docs/img]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/docs/img}")"
cd "$ROOT"
DASHBOARD_SCREENSHOT_DIR="$OUT" "${PYTHON:-$ROOT/.venv/bin/python}" -m pytest -q -p no:cacheprovider \
  -m browser "tests/browser/test_dashboard.py::test_search_by_payload_text_then_detail_shows_result_and_every_webhook_attempt"
ls -l "$OUT"/dashboard*.png
