"""Pictures of motion-vector grids: HSV flow colours, arrows over the keyframe, and per-video contact sheets.

Our addition (the reference has no visualisation). Grids are the processor's normalised motion (`[2, H, W]` per
frame, x then y); colours follow the usual optical-flow convention: hue = direction, brightness = magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

_SHEET_HEIGHT = 160


def _as_numpy(motion: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(motion, torch.Tensor):
        motion = motion.detach().float().cpu().numpy()
    return np.asarray(motion, dtype=np.float32)


def clip_motion_summary(motion_vectors: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean motion of a clip `[2, T, H, W]` over its frames -> `[2, H, W]` (frame 0, an I-frame, is left out)."""
    motion = _as_numpy(motion_vectors)
    if motion.ndim != 4 or motion.shape[0] != 2:
        raise ValueError(f"expected a clip's motion [2, T, H, W], got shape {tuple(motion.shape)}")
    return motion[:, 1:].mean(axis=1) if motion.shape[1] > 1 else motion[:, 0]


def motion_to_hsv_image(
    motion: torch.Tensor | np.ndarray, max_magnitude: float | None = None, size: tuple[int, int] | None = None
) -> Image.Image:
    """Draw one motion grid `[2, H, W]` in flow colours.

    Args:
        motion: x and y motion per cell.
        max_magnitude: magnitude shown at full brightness; the grid's own maximum by default.
        size: `(width, height)` of the picture; the grid's size by default (nearest-neighbour upscaling).
    """
    motion = _as_numpy(motion)
    if motion.ndim != 3 or motion.shape[0] != 2:
        raise ValueError(f"expected a motion grid [2, H, W], got shape {tuple(motion.shape)}")
    motion_x, motion_y = motion
    magnitude = np.hypot(motion_x, motion_y)
    scale = max_magnitude if max_magnitude is not None else float(magnitude.max())
    angle = (np.arctan2(motion_y, motion_x) % (2 * np.pi)) / (2 * np.pi)
    hsv = np.stack(
        [
            (angle * 255).astype(np.uint8),
            np.full_like(magnitude, 255, dtype=np.uint8),
            (np.clip(magnitude / scale, 0, 1) * 255).astype(np.uint8)
            if scale > 0
            else np.zeros_like(magnitude, np.uint8),
        ],
        axis=-1,
    )
    image = Image.fromarray(hsv, mode="HSV").convert("RGB")
    return image.resize(size, Image.NEAREST) if size is not None else image


def motion_to_arrow_image(
    motion: torch.Tensor | np.ndarray,
    background: np.ndarray | Image.Image | None = None,
    size: tuple[int, int] = (360, 200),
    color: tuple[int, int, int] = (255, 40, 40),
    max_magnitude: float | None = None,
) -> Image.Image:
    """Draw one motion grid `[2, H, W]` as arrows, over `background` (e.g. the clip's keyframe) if given.

    Arrows start at cell centres (every few cells, so they stay readable) and end at a white dot; `max_magnitude`
    (the grid's maximum by default) is drawn as long as the spacing between arrows.
    """
    motion = _as_numpy(motion)
    if motion.ndim != 3 or motion.shape[0] != 2:
        raise ValueError(f"expected a motion grid [2, H, W], got shape {tuple(motion.shape)}")
    width, height = size
    if background is None:
        canvas = Image.new("RGB", size, (0, 0, 0))
    else:
        image = background if isinstance(background, Image.Image) else Image.fromarray(np.asarray(background))
        canvas = image.convert("RGB").resize(size, Image.BICUBIC)
    draw = ImageDraw.Draw(canvas)
    rows, cols = motion.shape[1:]
    cell_w, cell_h = width / cols, height / rows
    magnitude = np.hypot(motion[0], motion[1])
    scale = max_magnitude if max_magnitude is not None else float(magnitude.max())
    if scale <= 0:
        return canvas
    # One arrow every `step` cells so that arrows stay at least ~20 pixels apart.
    step = max(1, int(np.ceil(20 / min(cell_w, cell_h))))
    length = step * min(cell_w, cell_h)
    for row in range(step // 2, rows, step):
        for col in range(step // 2, cols, step):
            start_x, start_y = (col + 0.5) * cell_w, (row + 0.5) * cell_h
            end_x = start_x + motion[0, row, col] / scale * length
            end_y = start_y + motion[1, row, col] / scale * length
            draw.line([(start_x, start_y), (end_x, end_y)], fill=(0, 0, 0), width=4)
            draw.line([(start_x, start_y), (end_x, end_y)], fill=color, width=2)
            draw.ellipse([end_x - 2, end_y - 2, end_x + 2, end_y + 2], fill=(255, 255, 255))
    return canvas


def make_contact_sheet(
    keyframes: Sequence[np.ndarray | Image.Image],
    motions: Sequence[torch.Tensor | np.ndarray],
    extra_rows: Sequence[Sequence[Image.Image]] | None = None,
    height: int = _SHEET_HEIGHT,
) -> Image.Image:
    """One row per clip: the keyframe, its mean motion in flow colours, and arrows over the keyframe.

    Args:
        keyframes: RGB keyframe of each clip.
        motions: each clip's motion `[2, T, H, W]`.
        extra_rows: per clip, more pictures to append to its row (e.g. a decoded motion field).
        height: height of each row in pixels.
    """
    if len(keyframes) != len(motions) or not keyframes:
        raise ValueError(f"need one motion per keyframe and at least one clip, got {len(keyframes)}/{len(motions)}")
    tiles_per_row = []
    for index, (keyframe, motion) in enumerate(zip(keyframes, motions)):
        image = keyframe if isinstance(keyframe, Image.Image) else Image.fromarray(np.asarray(keyframe))
        width = max(1, round(image.width * height / image.height))
        summary = clip_motion_summary(motion)
        scale = float(np.abs(summary).max()) or None
        tiles = [
            image.convert("RGB").resize((width, height), Image.BICUBIC),
            motion_to_hsv_image(summary, max_magnitude=scale, size=(width, height)),
            motion_to_arrow_image(summary, image, size=(width, height), max_magnitude=scale),
        ]
        if extra_rows is not None:
            tiles += [tile.convert("RGB").resize((width, height)) for tile in extra_rows[index]]
        tiles_per_row.append(tiles)
    sheet_width = max(sum(tile.width for tile in tiles) + 4 * (len(tiles) - 1) for tiles in tiles_per_row)
    sheet = Image.new("RGB", (sheet_width, len(tiles_per_row) * (height + 4) - 4), (255, 255, 255))
    for row, tiles in enumerate(tiles_per_row):
        left = 0
        for tile in tiles:
            sheet.paste(tile, (left, row * (height + 4)))
            left += tile.width + 4
    return sheet
