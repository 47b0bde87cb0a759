#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite in 2 worker processes (TEST_WORKERS=N to change; 0 runs
# in this process). Fails if any test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile tests "$@"
