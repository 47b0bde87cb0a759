"""The built-in tiny Video-LaVIT: a generation checkpoint trained from scratch on the procedural world.

Our addition. It is what the package runs when no weights are given: a few MB of safetensors under
`video_lavit/assets/world_model`, made by `video-lavit train world --output DIR` (seed 0, the default
`WorldModelSettings`; `world_report.json` in the folder holds the held-out accuracy it was shipped with). It knows the
world's videos only (one textured shape of 4 colours and 4 kinds sliding left, right, up or down over a dark
background, see `video_lavit.training.world`); any other video gets an answer about such a world.

    from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
    from video_lavit.world_model import world_model_path

    model = VideoLaVITForConditionalGeneration.from_pretrained(world_model_path())
    processor = VideoLaVITProcessor.from_pretrained(world_model_path())
"""

from __future__ import annotations

import json
import os

from .errors import CheckpointLoadError

WORLD_MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "world_model")


def world_model_path() -> str:
    """The folder of the built-in world model (model, processor and `world_report.json`).

    Raises:
        `CheckpointLoadError`: the folder is missing from this installation.
    """
    if not os.path.isfile(os.path.join(WORLD_MODEL_DIR, "model.safetensors")):
        raise CheckpointLoadError(
            f"{WORLD_MODEL_DIR}: the built-in world model is missing from this installation; reinstall video-lavit, "
            "or make one with `video-lavit train world --output DIR` and pass DIR."
        )
    return WORLD_MODEL_DIR


def world_model_report() -> dict:
    """The training report the built-in world model was shipped with (`world_report.json`)."""
    with open(os.path.join(world_model_path(), "world_report.json"), encoding="utf-8") as file:
        return json.load(file)


__all__ = ["WORLD_MODEL_DIR", "world_model_path", "world_model_report"]
