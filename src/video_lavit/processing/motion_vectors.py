"""Motion vectors of a decoded frame -> the macroblock grid the motion tokenizer reads.

Implements the reference's motion-vector grids (paper section 3.1, "motion vectors"): each exported vector is scaled to
pixels (`source * motion / motion_scale`), divided by the frame size and by the dataset std (itself divided by the
tokenizer-input scale 10), written at its block centre, max-pooled per channel over 16x16 macroblocks, and finally
one 24-frame clip is resized bicubically to 20 x 36 after the clip's second I-frame (index 12) is replaced by the
average of its neighbours.

Deliberate differences from the reference:
- The reference paints every vector into a dense float64 (H, W, 2) map per frame, keeps all of them, pads, and
  max-pools. We scatter the vectors straight into the (ceil(H/16), ceil(W/16)) grid with a per-channel maximum,
  which gives the same float32 numbers (the float64 -> float32 cast is monotonic, so it commutes with the max)
  without ever allocating a full-resolution map.
- Where two vectors land on the same clipped pixel (blocks hanging over the right or bottom edge of frames whose
  size is not a multiple of 16), the dense map keeps the later one; we drop the earlier one explicitly to match.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidInputError

MACROBLOCK_SIZE = 16
# Dataset std of motion vectors in frame-size units (x, y); the mean is zero.
MOTION_VECTOR_STD = (0.0993703, 0.1130276)
# The tokenizer reads motion vectors multiplied by this (the std is divided by it).
MOTION_INPUT_SCALE = 10.0
# Value of "no vector here" before pooling; pooled cells below `_EMPTY_THRESHOLD` become 0.
_EMPTY_VALUE = -10000.0
_EMPTY_THRESHOLD = -1000.0


def motion_grid_shape(height: int, width: int) -> tuple[int, int]:
    """Rows and columns of the macroblock grid of a `height` x `width` frame."""
    return -(-height // MACROBLOCK_SIZE), -(-width // MACROBLOCK_SIZE)


def pool_frame_motion_vectors(
    motion_vectors: np.ndarray | None,
    height: int,
    width: int,
    motion_std: tuple[float, float] = MOTION_VECTOR_STD,
    input_scale: float = MOTION_INPUT_SCALE,
) -> np.ndarray:
    """Normalise one frame's exported motion vectors and max-pool them onto its macroblock grid.

    Args:
        motion_vectors (`np.ndarray` or `None`):
            The frame's `AV_FRAME_DATA_MOTION_VECTORS` side data as PyAV's structured array (fields `source`,
            `dst_x`, `dst_y`, `motion_x`, `motion_y`, `motion_scale`), or `None` for a frame without vectors.
        height (`int`), width (`int`): the decoded frame size in pixels.
        motion_std (`tuple[float, float]`): dataset std of (x, y) motion in frame-size units.
        input_scale (`float`): the std is divided by this, as the tokenizer expects.

    Returns:
        `np.ndarray` float32 `[2, rows, cols]` with `rows, cols = ceil(H/16), ceil(W/16)`: per channel, the largest
        normalised vector whose block centre lies in each macroblock, or 0 where none does.
    """
    rows, cols = motion_grid_shape(height, width)
    grid = np.zeros((2, rows, cols), dtype=np.float32)
    if motion_vectors is None or len(motion_vectors) == 0:
        return grid

    source = motion_vectors["source"].astype(np.int64)
    # (N, 2) in pixels, float64 as numpy's true division of integers gives.
    displacement = (
        np.stack([source * motion_vectors["motion_x"], source * motion_vectors["motion_y"]], axis=1)
        / motion_vectors["motion_scale"].astype(np.int64)[:, None]
    )
    std = np.asarray(motion_std, dtype=np.float64) / input_scale
    with np.errstate(over="ignore"):  # settings that overflow float32 are refused by the caller, which checks
        values = (displacement / np.array([width, height], dtype=np.float64) / std).astype(np.float32)

    x = np.clip(motion_vectors["dst_x"].astype(np.int64), 0, width - 1)
    y = np.clip(motion_vectors["dst_y"].astype(np.int64), 0, height - 1)
    # A later vector at the same pixel overwrites an earlier one: keep the last occurrence of each pixel (the last
    # of each run of equal pixels after a stable sort).
    pixel = y * width + x
    order = np.argsort(pixel, kind="stable")
    sorted_pixel = pixel[order]
    last_of_run = np.empty(len(order), dtype=bool)
    last_of_run[-1] = True
    np.not_equal(sorted_pixel[1:], sorted_pixel[:-1], out=last_of_run[:-1])
    keep = order[last_of_run]
    cell = (y[keep] // MACROBLOCK_SIZE) * cols + x[keep] // MACROBLOCK_SIZE
    kept = values[keep]

    pooled = np.full((2, rows * cols), _EMPTY_VALUE, dtype=np.float32)
    np.maximum.at(pooled[0], cell, kept[:, 0])
    np.maximum.at(pooled[1], cell, kept[:, 1])
    pooled[pooled < _EMPTY_THRESHOLD] = 0.0
    return pooled.reshape(2, rows, cols)


def clip_motion_grid(
    frame_grids: list[np.ndarray],
    num_frames: int = 24,
    grid_size: tuple[int, int] = (20, 36),
) -> torch.Tensor:
    """Assemble one clip's pooled frame grids into the tokenizer input.

    Args:
        frame_grids (`list[np.ndarray]`):
            Up to `num_frames` pooled grids `[2, rows, cols]` from `pool_frame_motion_vectors`, in display order,
            starting at the clip's I-frame. A shorter list is padded with empty (zero) frames.
        num_frames (`int`): frames per clip (24).
        grid_size (`tuple[int, int]`): output (height, width) of the grid (20, 36).

    Returns:
        `torch.Tensor` float32 `[2, num_frames, grid_h, grid_w]`.
    """
    if not frame_grids:
        raise InvalidInputError("a clip needs at least one frame")
    if len(frame_grids) > num_frames:
        raise InvalidInputError(f"a clip holds at most {num_frames} frames, got {len(frame_grids)}")
    rows, cols = frame_grids[0].shape[-2:]
    motions = torch.zeros(num_frames, 2, rows, cols, dtype=torch.float32)
    motions[: len(frame_grids)] = torch.from_numpy(np.stack(frame_grids))

    # The clip's second I-frame (index num_frames // 2) has no vectors: fill it with the time-interpolated middle of
    # its neighbours, computed by the same trilinear call as the reference for bit-identical results.
    middle = num_frames // 2
    if num_frames > middle + 1:
        neighbours = torch.stack([motions[middle - 1], motions[middle + 1]])  # t c h w
        neighbours = neighbours.permute(1, 0, 2, 3).unsqueeze(0)  # t c h w -> 1 c t h w
        interpolated = F.interpolate(neighbours, scale_factor=(1.5, 1.0, 1.0), mode="trilinear")[0]
        motions[middle] = interpolated.permute(1, 0, 2, 3)[1]  # c t h w -> t c h w, middle of three

    # Bicubic, no antialiasing: the tensor semantics of the torchvision release the model was trained with.
    motions = F.interpolate(motions, size=grid_size, mode="bicubic", align_corners=False)
    return motions.permute(1, 0, 2, 3).contiguous()  # t c h w -> c t h w
