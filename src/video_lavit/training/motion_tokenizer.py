"""Training the motion tokenizer with `transformers.Trainer` (our addition: the reference released no training code).

`motion_grid_dataset` turns videos (paths, bytes, or a `datasets` column of `Video(decode=False)` rows) into a
`datasets.Dataset` with one 24-frame motion grid per row, using `VideoLaVITVideoProcessor`; `MotionGridDataCollator`
stacks rows (or precomputed processor outputs) into the `motion_vectors` batch that
`VideoLaVITMotionTokenizer.forward` trains on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch

from ..errors import InvalidInputError
from ..processing.video_io import VideoInput
from ..processing.video_processing_video_lavit import VideoLaVITVideoProcessor


def motion_grid_dataset(
    videos: Iterable[VideoInput] | datasets.Dataset,
    processor: VideoLaVITVideoProcessor | None = None,
    video_column: str = "video",
    **processor_options,
) -> datasets.Dataset:
    """One row per clip: `motion_vectors` float32 `[2, 24, 20, 36]`, plus `video_index` and `start_frame`.

    Args:
        videos: video inputs, or a `datasets.Dataset` whose `video_column` holds `Video(decode=False)` rows.
        processor: the video processor (default settings if omitted).
        video_column: column of `videos` to read when it is a `datasets.Dataset`.
        processor_options: per-call options of the processor, e.g. `max_clips=None` to keep every clip.
    """
    processor = processor or VideoLaVITVideoProcessor()
    if isinstance(videos, datasets.Dataset):
        videos = videos.cast_column(video_column, datasets.Video(decode=False))[video_column]
    videos = list(videos)

    def generate():
        for video_index, video in enumerate(videos):
            with processor.clip_reader(video, **processor_options) as reader:
                for clip in reader:
                    yield {
                        "motion_vectors": clip.motion_vectors.numpy(),
                        "video_index": video_index,
                        "start_frame": clip.start_frame,
                    }

    features = datasets.Features(
        {
            "motion_vectors": datasets.Array4D(shape=(2, 24, 20, 36), dtype="float32"),
            "video_index": datasets.Value("int64"),
            "start_frame": datasets.Value("int64"),
        }
    )
    dataset = datasets.Dataset.from_generator(generate, features=features, cache_dir=None, keep_in_memory=True)
    return dataset.with_format("torch", columns=["motion_vectors"], output_all_columns=True)


@dataclass
class MotionGridDataCollator:
    """Stack motion grids into a batch `{"motion_vectors": [batch, 2, 24, 20, 36]}`.

    Each feature is a mapping with `motion_vectors` of shape `[2, 24, 20, 36]` (one clip) or
    `[clips, 2, 24, 20, 36]` (all clips of a video, as the processor returns them); tensors, arrays or nested lists.
    """

    dtype: torch.dtype = torch.float32

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        grids = []
        for feature in features:
            grid = feature["motion_vectors"]
            grid = grid if isinstance(grid, torch.Tensor) else torch.as_tensor(np.asarray(grid))
            if grid.ndim == 4:
                grid = grid.unsqueeze(0)
            if grid.ndim != 5 or tuple(grid.shape[1:]) != (2, 24, 20, 36):
                raise InvalidInputError(
                    f"motion_vectors must be [2, 24, 20, 36] or [clips, 2, 24, 20, 36], got {tuple(grid.shape)}"
                )
            grids.append(grid)
        return {"motion_vectors": torch.cat(grids).to(self.dtype)}
