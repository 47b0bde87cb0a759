"""Prepared training rows with random codes, as `video_lavit.training.prepare_corpus` writes them (no video decoded).

Import from any test folder as `from tiny_data import ...` (`tests/` is on `sys.path` through `conftest.py`).
"""

from __future__ import annotations

import os
import random

import datasets
import torch

from video_lavit.training import PREPARED_FEATURES


def prepared_row(
    sample_id,
    media="video",
    clips=2,
    text="A man is riding a bicycle.",
    conversations=None,
    seed=0,
    keyframe_input="codes",
    hidden=32,
):
    """A row as `prepare_corpus` writes it, with random codes (no video is decoded)."""
    rng = random.Random(seed)
    keyframes = clips if media == "video" else (1 if media == "image" else 0)
    counts = [rng.randint(2, 6) for _ in range(keyframes)]
    row = {
        "id": sample_id,
        "media": media,
        "path": f"{sample_id}.mp4",
        "text": text,
        "conversations": conversations or [],
        "keyframe_input": keyframe_input,
        "clip_start_times": [4.0 * clip for clip in range(clips if media == "video" else 0)],
        "clip_num_frames": [24] * (clips if media == "video" else 0),
        "keyframe_codes": [],
        "keyframe_features": [],
        "motion_codes": [[rng.randrange(16) for _ in range(135)] for _ in range(clips if media == "video" else 0)],
        "motion_vectors": [],
    }
    if keyframe_input == "codes":
        row["keyframe_codes"] = [[rng.randrange(16) for _ in range(count)] for count in counts]
    else:
        row["keyframe_features"] = [torch.randn(count, hidden).tolist() for count in counts]
    return row


def write_prepared(rows: list[dict], folder: str | os.PathLike) -> str:
    """Write `rows` as a prepared corpus folder (one shard) that `load_prepared` reads."""
    os.makedirs(os.path.join(folder, "data"), exist_ok=True)
    datasets.Dataset.from_list(rows, features=PREPARED_FEATURES).to_parquet(
        os.path.join(folder, "data", "shard-00000.parquet")
    )
    return os.fspath(folder)
