#!/usr/bin/env bash
# Create .venv (if missing) with Python 3.11 and install the package with its test, ray, demo and quantization
# extras.
# torch and torchvision are pinned to releases that pip takes from a local wheel cache where one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch, torchvision" >/dev/null 2>&1; then
    .venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
.venv/bin/python -m pip install --quiet -e ".[test,ray,demo,quantization]"
