import numpy as np
import pytest
import torch

from video_lavit import VideoClipReader
from video_lavit.processing import clip_motion_grid, pool_frame_motion_vectors
from video_lavit.processing.motion_vectors import MOTION_INPUT_SCALE, MOTION_VECTOR_STD

FIELDS = [
    ("source", "<i4"),
    ("dst_x", "<i2"),
    ("dst_y", "<i2"),
    ("motion_x", "<i4"),
    ("motion_y", "<i4"),
    ("motion_scale", "<u2"),
]


def vectors(rows):
    return np.array([tuple(row) for row in rows], dtype=FIELDS)


def normalised(pixels, size, axis):
    return np.float32(pixels / size / (MOTION_VECTOR_STD[axis] / MOTION_INPUT_SCALE))


def test_pooling_scales_normalises_and_takes_channel_max():
    # Frame 40x20 -> grid 2x3. Two vectors in cell (0, 0), one in cell (1, 2); source -1 flips the sign.
    data = vectors([(-1, 8, 8, -4, 2, 2), (-1, 4, 4, 6, -6, 2), (1, 39, 19, 10, 0, 4)])
    grid = pool_frame_motion_vectors(data, height=20, width=40)
    assert grid.shape == (2, 2, 3) and grid.dtype == np.float32
    # x: max(+2, -3) px; y: max(-1, +3) px.
    assert grid[0, 0, 0] == normalised(2.0, 40, 0) and grid[1, 0, 0] == normalised(3.0, 20, 1)
    assert grid[0, 1, 2] == normalised(2.5, 40, 0) and grid[1, 1, 2] == 0
    empty = np.ones_like(grid, dtype=bool)
    empty[:, 0, 0] = empty[:, 1, 2] = False
    assert (grid[empty] == 0).all()


def test_pooling_clips_positions_and_keeps_the_last_vector_per_pixel():
    # Both centres fall outside a 34x18 frame and clip to pixel (33, 17): the later vector wins, not the max.
    data = vectors([(-1, 36, 24, -20, -20, 2), (-1, 44, 24, 2, 2, 2)])
    grid = pool_frame_motion_vectors(data, height=18, width=34)
    assert grid.shape == (2, 2, 3)
    assert grid[0, 1, 2] == normalised(-1.0, 34, 0) and grid[1, 1, 2] == normalised(-1.0, 18, 1)


def test_frame_without_vectors_is_zero():
    assert not pool_frame_motion_vectors(None, 32, 48).any()
    assert not pool_frame_motion_vectors(vectors([]), 32, 48).any()


def test_clip_grid_pads_interpolates_middle_and_resizes():
    frames = [np.full((2, 3, 4), float(index), dtype=np.float32) for index in range(20)]
    frames[12][:] = 0  # the second I-frame has no vectors
    grid = clip_motion_grid(frames, num_frames=24, grid_size=(20, 36))
    assert grid.shape == (2, 24, 20, 36) and grid.dtype == torch.float32
    torch.testing.assert_close(grid[:, 12], torch.full((2, 20, 36), 12.0))  # mean of frames 11 and 13
    assert (grid[:, 20:] == 0).all()  # padding
    torch.testing.assert_close(grid[:, 5], torch.full((2, 20, 36), 5.0))
    with pytest.raises(ValueError):
        clip_motion_grid([], num_frames=24)


def test_known_translation_gives_motion_in_that_direction(sample_video):
    # The texture moves (+2, +1) px per 24 fps frame = (+8, +4) px per 6 fps frame on a 96x64 video.
    with VideoClipReader(sample_video) as reader:
        assert (reader.info.width, reader.info.height) == (96, 64)
        clip = next(iter(reader))
    motion = clip.motion_vectors  # [2, 24, 20, 36]
    moving = torch.cat([motion[:, 1:12], motion[:, 13:]], dim=1)
    median_x = moving[0].median().item()
    median_y = moving[1].median().item()
    assert median_x == pytest.approx(normalised(8.0, 96, 0), rel=0.2)
    assert median_y == pytest.approx(normalised(4.0, 64, 1), rel=0.2)
    assert (motion[:, 0] == 0).all()  # the I-frame has no motion


def test_mirrored_motion_flips_sign(tmp_path):
    from video_lavit import make_sample_video

    path = make_sample_video(tmp_path / "left.mp4", width=96, height=64, seconds=5.0, fps=24, shift=(-2, 0))
    with VideoClipReader(path) as reader:
        motion = next(iter(reader)).motion_vectors
    assert motion[0, 1:12].median().item() == pytest.approx(normalised(-8.0, 96, 0), rel=0.2)
    assert abs(motion[1, 1:12].median().item()) < 0.5
