#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite. Fails if any test fails or none ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m pytest tests "$@"
