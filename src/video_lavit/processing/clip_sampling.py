"""Which frames start a clip: the reference's keyframe-based clip selection.

A clip starts at an I-frame of the 6 fps MPEG-4 stream (GOP 12, so one clip of 24 frames spans two GOPs). The rule
is the reference's `sample_video_clips`, restated:

1. candidates = every I-frame; if there are several, keep those whose next I-frame is exactly `gop_size` frames
   later and that leave `num_frames` frames before the end, and use this filtered list only if it has >= 2 entries;
2. if `len(candidates) / 2 <= max_clips`: every second candidate starting at the second (more than two
   candidates) or at the first (one or two);
3. otherwise every second candidate starting at the second, thinned to `max_clips` evenly spaced ones.

Our addition: `max_clips=None` means no limit (step 3 never applies), for long-video use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidInputError


def select_clip_starts(
    intra_frames: Sequence[int],
    total_frames: int,
    num_frames: int = 24,
    max_clips: int | None = 16,
    gop_size: int = 12,
) -> list[int]:
    """Choose the start frames of the clips of one video.

    Args:
        intra_frames (`Sequence[int]`): indices of the I-frames, ascending.
        total_frames (`int`): number of frames in the stream.
        num_frames (`int`): frames per clip.
        max_clips (`int` or `None`): most clips to return; `None` for no limit.
        gop_size (`int`): distance between I-frames of a regular GOP.

    Returns:
        `list[int]`: the selected start frames, ascending; empty only if `intra_frames` is empty.
    """
    if max_clips is not None and max_clips < 1:
        raise InvalidInputError(f"max_clips must be at least 1 or None, got {max_clips}")
    starts = np.asarray(intra_frames, dtype=np.int64)
    if len(starts) == 0:
        return []

    if len(starts) > 1:
        regular = starts[:-1][starts[:-1] + gop_size == starts[1:]]
    else:
        regular = starts
    regular = regular[regular + num_frames <= total_frames]
    if len(regular) >= 2:
        starts = regular

    if max_clips is None or len(starts) / 2 <= max_clips:
        selected = starts[1::2] if len(starts) > 2 else starts[0::2]
    else:
        selected = starts[1::2]
        if len(selected) > max_clips:
            selected = selected[np.linspace(0, len(selected) - 1, max_clips, dtype=int)]
    return [int(start) for start in selected]
