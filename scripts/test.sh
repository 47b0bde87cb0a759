#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite in 2 worker processes (TEST_WORKERS=N to change; 0 runs
# in this process). Fails if any test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# The demo's browser test drives Debian's chromium with Playwright (no browser build is downloaded).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
    else
        echo "error: the demo's browser test needs Debian's chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder tests "$@"
