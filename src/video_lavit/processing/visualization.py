"""Pictures of motion-vector grids: HSV flow colours, arrows over the keyframe, and per-video contact sheets.

Our addition (the reference has no visualisation). Grids are the processor's normalised motion (`[2, H, W]` per
frame, x then y); colours follow the usual optical-flow convention: hue = direction, brightness = magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import InvalidInputError

_SHEET_HEIGHT = 160


def _as_numpy(motion: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(motion, torch.Tensor):
        motion = motion.detach().float().cpu().numpy()
    return np.asarray(motion, dtype=np.float32)


def clip_motion_summary(motion_vectors: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean motion of a clip `[2, T, H, W]` over its frames -> `[2, H, W]` (frame 0, an I-frame, is left out)."""
    motion = _as_numpy(motion_vectors)
    if motion.ndim != 4 or motion.shape[0] != 2:
        raise InvalidInputError(f"expected a clip's motion [2, T, H, W], got shape {tuple(motion.shape)}")
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
        raise InvalidInputError(f"expected a motion grid [2, H, W], got shape {tuple(motion.shape)}")
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
        raise InvalidInputError(f"expected a motion grid [2, H, W], got shape {tuple(motion.shape)}")
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


def _fit(image: Image.Image, height: int, max_width: int) -> Image.Image:
    """`image` scaled to `height` rows (at most `max_width` columns, keeping its aspect), at least 1 x 1."""
    scale = min(height / image.height, max_width / image.width)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.BICUBIC)


def contact_sheet_row(
    keyframe: np.ndarray | Image.Image,
    motion: torch.Tensor | np.ndarray,
    extra_tiles: Sequence[Image.Image] = (),
    height: int = _SHEET_HEIGHT,
    max_tile_width: int = 4 * _SHEET_HEIGHT,
) -> list[Image.Image]:
    """The tiles of one clip's contact-sheet row: the keyframe, its mean motion in flow colours, arrows over it, and
    `extra_tiles`; each `height` rows high at most and at most `max_tile_width` wide (however extreme the aspect)."""
    image = keyframe if isinstance(keyframe, Image.Image) else Image.fromarray(np.asarray(keyframe))
    tile = _fit(image, height, max_tile_width)
    size = tile.size
    summary = clip_motion_summary(motion)
    scale = float(np.abs(summary).max()) or None
    tiles = [
        tile,
        motion_to_hsv_image(summary, max_magnitude=scale, size=size),
        motion_to_arrow_image(summary, tile, size=size, max_magnitude=scale),
    ]
    return tiles + [extra.convert("RGB").resize(size) for extra in extra_tiles]


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def join_contact_sheet_rows(
    rows: Sequence[Sequence[Image.Image]],
    gap: int = 4,
    titles: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    legend: Sequence[str] | None = None,
) -> Image.Image:
    """Rows of tiles (from `contact_sheet_row`) -> one picture, rows top to bottom, tiles left to right; with
    `titles` above the columns, `labels` left of the rows (e.g. clip number and times) and `legend` lines below."""
    if not rows:
        raise InvalidInputError("a contact sheet needs at least one row")
    if labels is not None and len(labels) != len(rows):
        raise InvalidInputError(f"{len(labels)} row labels for {len(rows)} rows")
    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        box = measure.multiline_textbbox((0, 0), text, font=font)
        return box[2] - box[0], box[3] - box[1]

    label_width = max((text_size(label)[0] for label in labels), default=0) + 2 * gap if labels else 0
    header = max((text_size(title)[1] for title in titles), default=0) + 2 * gap if titles else 0
    line_height = text_size("Ag")[1] + gap
    footer = line_height * len(legend) + gap if legend else 0
    heights = [max(tile.height for tile in tiles) for tiles in rows]
    width = label_width + max(sum(tile.width for tile in tiles) + gap * (len(tiles) - 1) for tiles in rows)
    if legend:
        width = max(width, max(text_size(line)[0] for line in legend) + 2 * gap)
    sheet = Image.new("RGB", (width, header + sum(heights) + gap * (len(rows) - 1) + footer), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if titles:
        left = label_width
        for title, tile in zip(titles, rows[0]):
            draw.text((left + 2, gap), title, fill=(0, 0, 0), font=font)
            left += tile.width + gap
    top = header
    for index, (tiles, row_height) in enumerate(zip(rows, heights)):
        if labels:
            draw.multiline_text((gap, top + gap), labels[index], fill=(0, 0, 0), font=font)
        left = label_width
        for tile in tiles:
            sheet.paste(tile, (left, top + (row_height - tile.height) // 2))
            left += tile.width + gap
        top += row_height + gap
    for number, line in enumerate(legend or ()):
        draw.text((gap, top + number * line_height), line, fill=(60, 60, 60), font=font)
    return sheet


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
        height: height of each row in pixels (tiles are at most four times as wide).
    """
    if len(keyframes) != len(motions) or not keyframes:
        raise InvalidInputError(
            f"need one motion per keyframe and at least one clip, got {len(keyframes)}/{len(motions)}"
        )
    rows = [
        contact_sheet_row(keyframe, motion, extra_rows[index] if extra_rows is not None else (), height, 4 * height)
        for index, (keyframe, motion) in enumerate(zip(keyframes, motions))
    ]
    return join_contact_sheet_rows(rows)
