"""Procedural videos with known motion: the built-in sample of `video-lavit tokenize`, tests and benchmarks.

A smooth random texture (seeded) slides by a fixed number of pixels per frame, and a bright disc crosses it the
other way, so the true motion of most of the frame is known exactly.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction

import av
import numpy as np
from PIL import Image


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(2, height // 12), max(2, width // 12), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))


def sample_video_frames(
    width: int = 320,
    height: int = 192,
    num_frames: int = 120,
    shift: tuple[int, int] = (2, 1),
    seed: int = 0,
) -> np.ndarray:
    """Frames of the procedural video as uint8 `[num_frames, height, width, 3]`.

    The background at frame `t` is the texture moved by `t * shift` pixels (x right, y down); a disc of radius
    `min(width, height) // 6` moves by `-2 * shift` per frame.
    """
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        frames[index] = next(_iter_frames(width, height, num_frames, shift, seed, start=index))
    return frames


def _iter_frames(width, height, num_frames, shift, seed, start=0):
    shift_x, shift_y = shift
    # A fixed-size texture read with wrap-around, so memory does not grow with the video's length.
    texture = _texture(height + 64, width + 64, seed)
    texture_height, texture_width = texture.shape[:2]
    radius = max(2, min(width, height) // 6)
    rows, cols = np.mgrid[0:height, 0:width]
    for index in range(start, num_frames):
        # Reading the texture at -t * shift moves the content by +shift per frame on screen.
        frame = texture[(rows - index * shift_y) % texture_height, (cols - index * shift_x) % texture_width]
        centre_x = (width // 2 - 2 * shift_x * (index - num_frames // 2)) % width
        centre_y = (height // 2 - 2 * shift_y * (index - num_frames // 2)) % height
        disc = (rows - centre_y) ** 2 + (cols - centre_x) ** 2 <= radius**2
        frame[disc] = (250, 240, 40)
        yield frame


def make_sample_video(
    path: str | os.PathLike | None = None,
    *,
    width: int = 320,
    height: int = 192,
    seconds: float = 10.0,
    fps: int | Fraction = 24,
    codec: str = "h264",
    shift: tuple[int, int] = (2, 1),
    seed: int = 0,
    bit_rate: int | None = None,
    container_format: str | None = None,
    options: dict[str, str] | None = None,
) -> bytes | str:
    """Write the procedural video and return its path, or its bytes when `path` is None.

    Args:
        path (`str`, *optional*): where to write; the container follows the extension (`mp4` when returning bytes).
        width, height (`int`): frame size.
        seconds (`float`): length.
        fps (`int` or `Fraction`): frame rate.
        codec (`str`): FFmpeg encoder name (`h264` uses libx264 when PyAV has it, else `mpeg4`).
        shift (`tuple[int, int]`): background motion in pixels per frame (x right, y down).
        seed (`int`): texture seed.
        bit_rate (`int`, *optional*): encoder bit rate.
        container_format (`str`, *optional*): force a container format.
        options (`dict`, *optional*): encoder options (libx264 runs with one thread unless `threads` is given, so that
            the same arguments give the same bytes).
    """
    options = dict(options or {})
    if codec in ("h264", "libx264"):
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        if codec == "libx264":
            # libx264's frame threads make the bytes differ from call to call; one thread keeps them identical.
            options.setdefault("threads", "1")
    rate = Fraction(fps).limit_denominator(1001)
    num_frames = max(1, int(round(seconds * float(rate))))
    target = path if path is not None else io.BytesIO()
    with av.open(target, mode="w", format=container_format or (None if path is not None else "mp4")) as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        for frame_array in _iter_frames(width, height, num_frames, shift, seed):
            frame = av.VideoFrame.from_ndarray(frame_array, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return os.fspath(path) if path is not None else target.getvalue()
