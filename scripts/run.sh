#!/usr/bin/env bash
# Set up the environment if needed, then run the main job (`video-lavit tour`): a built-in world video through the
# built-in tiny world model (clips, tokens, answers, pictures and a report in video_lavit_tour/). Arguments go to
# `video-lavit tour`, e.g. `bash scripts/run.sh --model converted/understanding my_video.mp4`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/video-lavit tour "$@"
