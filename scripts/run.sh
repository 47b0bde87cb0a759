#!/usr/bin/env bash
# Set up the environment if needed, then run the main job (`video-lavit tokenize`) on the built-in sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/video-lavit tokenize "$@"
