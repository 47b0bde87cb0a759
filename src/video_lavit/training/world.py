"""A procedural world of moving shapes that a tiny Video-LaVIT can learn: videos, questions and a tokenizer.

Our addition (the paper has no such data): each world video shows one textured shape (4 colours x 4 shapes) that
slides in one of 4 directions at one of 2 speeds over a dark, static, low-contrast background. It is 24 frames at
6 fps (4 s), so `VideoLaVITVideoProcessor` with its default settings cuts exactly one clip from it, with all 24
frames valid and no resampling. Colour and shape are visible in the keyframe; the direction is only in the motion:
the shape's first position and texture depend on the seed alone (the same for every direction and speed), so a model
that answers direction questions must read the motion tokens.

How the motion is made measurable by MPEG-4 motion vectors:
- the shape carries a smooth texture (a sum of seeded sinusoids, fixed to the shape) that the encoder can track,
  and the background does not move, so every non-zero vector belongs to the shape;
- the shape is rendered with 4x4 supersampling, so the sub-pixel steps of the slow speed (half a pixel per frame at
  96 px) move it smoothly instead of every other frame;
- the source is lossless H.264 (or MPEG-4 at a high bit rate without libx264), so the processor's own MPEG-4
  re-encoding is the only lossy step.

`world_dataset` writes a balanced set of such videos and returns a `datasets.Dataset` with a caption and LLaVA-style
one-word questions per video; `score_world_answer` scores a model's answers and `build_world_tokenizer` builds a
small LLaMA-style tokenizer in which every answer word is a single token.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zlib
from dataclasses import dataclass

import av
import datasets
import numpy as np
from PIL import Image
from transformers import LlamaTokenizer

from ..errors import InvalidInputError, OutputError
from ..media_tokenizers.token_layout import VIDEO_PLACEHOLDER, VideoLaVITTokenLayout
from ..processing.processing_video_lavit import ANSWER_SEPARATOR, DEFAULT_SYSTEM_PROMPT
from ..processing.tokenization_video_lavit import add_video_lavit_tokens
from .tiny_tokenizer import build_llama_style_tokenizer

# RGB of the shape's brightest texels; its texture darkens them to no less than `_TEXTURE_MIN` of that.
WORLD_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "green": (40, 205, 60),
    "blue": (45, 95, 235),
    "yellow": (235, 215, 40),
}
WORLD_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
# Unit steps on screen (x right, y down).
WORLD_DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
# Movement per frame as a fraction of the frame side: half a pixel and one pixel per frame at 96 px.
WORLD_SPEEDS: dict[str, float] = {"slow": 1 / 192, "fast": 1 / 96}
WORLD_SPEED_ADVERBS: dict[str, str] = {"slow": "slowly", "fast": "quickly"}
# One Video-LaVIT clip: the processor's default frame rate and clip length.
WORLD_FPS = 6
WORLD_NUM_FRAMES = 24
WORLD_FRAME_SIZE = 96
# The shape's bounding square, as a fraction of the frame side (32 px at 96 px, 10-11 px at a 32 px keyframe).
WORLD_SHAPE_FRACTION = 1 / 3
# Part of the file names of `world_dataset`: raise it whenever the rendering changes, so stale files are not reused.
WORLD_VERSION = 1
# Text vocabulary of `build_world_tokenizer` in which every answer word is one token. With 320 ids (61 learned tokens)
# the answer words alone would need about 90, so they are split into pieces.
WORLD_TEXT_VOCAB_SIZE = 512

_SUPERSAMPLING = 4
_TEXTURE_WAVES = 6
_TEXTURE_MIN = 0.55
# Grey levels of the static background: dark and low-contrast, so that the shape stands out.
_BACKGROUND_LEVEL, _BACKGROUND_CONTRAST = 16.0, 24.0


@dataclass(frozen=True)
class WorldQuestion:
    """One kind of world question: its text and its possible one-word answers.

    Attributes:
        kind (`str`): `"colour"`, `"shape"` or `"direction"`, also the dataset column that holds the answer.
        question (`str`): the question as asked in the conversations.
        options (`tuple[str, ...]`): every possible answer (4: chance is 25%).
    """

    kind: str
    question: str
    options: tuple[str, ...]


_QUESTIONS = (
    WorldQuestion("colour", "What colour is the shape?", tuple(WORLD_COLOURS)),
    WorldQuestion("shape", "What shape is it?", WORLD_SHAPES),
    WorldQuestion("direction", "Which way does the shape move?", tuple(WORLD_DIRECTIONS)),
)


def world_questions() -> dict[str, WorldQuestion]:
    """The question kinds of the world, `{kind: WorldQuestion}`, in the order colour, shape, direction."""
    return {question.kind: question for question in _QUESTIONS}


def world_caption(colour: str, shape: str, direction: str, speed: str = "slow") -> str:
    """The caption of a world video, e.g. `"a red square moves left slowly."`."""
    _check_attributes(colour, shape, direction, speed)
    return f"a {colour} {shape} moves {direction} {WORLD_SPEED_ADVERBS[speed]}."


def _normalise_answer(text: str) -> str:
    text = text.replace("</s>", " ").replace("\\n", " ")
    text = " ".join(text.split()).lower()
    return text.strip(" .,!?;:'\"")


def score_world_answer(kind: str, prediction: str, answer: str) -> bool:
    """Whether `prediction` is `answer` after normalisation (case, spaces, surrounding punctuation, `</s>`, `\\n`).

    Args:
        kind (`str`): the question kind (a key of `world_questions()`).
        prediction (`str`): the model's decoded reply.
        answer (`str`): the true answer, one of the kind's options.

    Raises:
        `InvalidInputError`: an unknown kind, or an answer that is not one of its options.
    """
    questions = world_questions()
    if kind not in questions:
        raise InvalidInputError(f"unknown world question kind {kind!r}; the kinds are {', '.join(questions)}.")
    if answer not in questions[kind].options:
        raise InvalidInputError(
            f"{answer!r} is not an answer to a {kind} question; the options are {', '.join(questions[kind].options)}."
        )
    if not isinstance(prediction, str):
        raise InvalidInputError(f"the prediction must be a string, got {type(prediction).__name__}.")
    return _normalise_answer(prediction) == answer


def _check_choice(value: str, options, what: str) -> None:
    if not isinstance(value, str) or value not in options:
        raise InvalidInputError(f"unknown world {what} {value!r}; choose one of {', '.join(options)}.")


def _check_attributes(colour: str, shape: str, direction: str, speed: str) -> None:
    _check_choice(colour, WORLD_COLOURS, "colour")
    _check_choice(shape, WORLD_SHAPES, "shape")
    _check_choice(direction, WORLD_DIRECTIONS, "direction")
    _check_choice(speed, WORLD_SPEEDS, "speed")


def _check_size_and_seed(size: int, seed: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 2:
        raise InvalidInputError(f"the world frame size must be an even integer of at least 32 pixels, got {size!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"the world seed must be a non-negative integer, got {seed!r}.")


@dataclass(frozen=True)
class _Scenery:
    """What a seed draws, in this order: the shape's first position, its texture waves and the background."""

    start: np.ndarray  # float64 [2]: top-left corner of the shape's square at frame 0, x right, y down, pixels
    wave_vectors: np.ndarray  # float64 [waves, 2]: radians per shape side along (x, y)
    wave_phases: np.ndarray  # float64 [waves]
    background: np.ndarray  # float64 [size, size, 3]


def _scenery(seed: int, size: int) -> _Scenery:
    rng = np.random.default_rng(int(seed))
    side = size * WORLD_SHAPE_FRACTION
    # Where the shape stays inside the frame for the whole clip in every direction at the fast speed.
    travel = WORLD_SPEEDS["fast"] * size * (WORLD_NUM_FRAMES - 1)
    start = rng.uniform(travel, size - side - travel, size=2)
    # Wavelengths of a third to an eighth of the shape's side (3 to 10 px at 96 px), in random directions.
    wave_vectors = rng.uniform(5.0, 19.0, size=(_TEXTURE_WAVES, 2)) * rng.choice([-1.0, 1.0], (_TEXTURE_WAVES, 2))
    wave_phases = rng.uniform(0.0, 2 * np.pi, size=_TEXTURE_WAVES)
    coarse = rng.integers(0, 256, size=(max(2, size // 8), max(2, size // 8)), dtype=np.uint8)
    background = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float64)
    background = _BACKGROUND_LEVEL + _BACKGROUND_CONTRAST * background / 255.0
    return _Scenery(start, wave_vectors, wave_phases, np.repeat(background[..., None], 3, axis=-1))


def world_shape_positions(
    direction: str, speed: str = "slow", seed: int = 0, *, size: int = WORLD_FRAME_SIZE
) -> np.ndarray:
    """Top-left corner of the shape's bounding square in each frame, float64 `[24, 2]` (x right, y down), in pixels.

    The first position is drawn from `seed` alone, uniformly where the shape stays inside the frame for the whole
    clip in any direction at the fast speed; the square's side is `size * WORLD_SHAPE_FRACTION`.
    """
    _check_choice(direction, WORLD_DIRECTIONS, "direction")
    _check_choice(speed, WORLD_SPEEDS, "speed")
    _check_size_and_seed(size, seed)
    return _positions(_scenery(seed, size).start, direction, speed, size)


def _positions(start: np.ndarray, direction: str, speed: str, size: int) -> np.ndarray:
    step = np.asarray(WORLD_DIRECTIONS[direction], dtype=np.float64) * WORLD_SPEEDS[speed] * size
    return start[None, :] + np.arange(WORLD_NUM_FRAMES, dtype=np.float64)[:, None] * step[None, :]


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which points `(u, v)` of the unit square (u right, v down) the shape covers."""
    square = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    if shape == "circle":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if shape == "square":
        return square
    if shape == "triangle":
        return square & (np.abs(u - 0.5) <= v / 2)
    return square & ((np.abs(u - 0.5) <= 1 / 6) | (np.abs(v - 0.5) <= 1 / 6))


def world_video_frames(
    colour: str,
    shape: str,
    direction: str,
    speed: str = "slow",
    seed: int = 0,
    *,
    size: int = WORLD_FRAME_SIZE,
) -> np.ndarray:
    """The frames of a world video, uint8 `[24, size, size, 3]` RGB (see the module docstring).

    Frame 0 depends on `colour`, `shape`, `seed` and `size` only, never on `direction` or `speed`.
    """
    _check_attributes(colour, shape, direction, speed)
    _check_size_and_seed(size, seed)
    scenery = _scenery(seed, size)
    side = size * WORLD_SHAPE_FRACTION
    rgb = np.asarray(WORLD_COLOURS[colour], dtype=np.float64)
    offsets = (np.arange(_SUPERSAMPLING) + 0.5) / _SUPERSAMPLING
    box = int(np.ceil(side)) + 2
    frames = np.empty((WORLD_NUM_FRAMES, size, size, 3), dtype=np.uint8)
    for index, (x, y) in enumerate(_positions(scenery.start, direction, speed, size)):
        left, top = int(np.floor(x)), int(np.floor(y))
        # Sample points of the pixels [top, top + box) x [left, left + box), in shape-side units from its corner.
        v = (((top + np.arange(box))[:, None] + offsets[None, :]).reshape(-1, 1) - y) / side
        u = (((left + np.arange(box))[:, None] + offsets[None, :]).reshape(1, -1) - x) / side
        covered = _inside(shape, u, v)
        waves = sum(
            np.sin(scenery.wave_vectors[wave, 0] * u + scenery.wave_vectors[wave, 1] * v + scenery.wave_phases[wave])
            for wave in range(_TEXTURE_WAVES)
        )
        shade = np.clip(0.78 + 0.44 * waves / _TEXTURE_WAVES, _TEXTURE_MIN, 1.0)
        # (box * s, box * s) samples -> (box, box) pixels: coverage and mean shade of each pixel.
        alpha = covered.reshape(box, _SUPERSAMPLING, box, _SUPERSAMPLING).mean(axis=(1, 3))
        shade = (covered * shade).reshape(box, _SUPERSAMPLING, box, _SUPERSAMPLING).mean(axis=(1, 3))
        # The shape stays inside the frame; only its sampling box may reach past the edge.
        bottom, right = min(top + box, size), min(left + box, size)
        alpha, shade = alpha[: bottom - top, : right - left], shade[: bottom - top, : right - left]
        frame = scenery.background.copy()
        region = frame[top:bottom, left:right]
        region *= 1.0 - alpha[..., None]
        region += shade[..., None] * rgb
        frames[index] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return frames


def make_world_video(
    colour: str,
    shape: str,
    direction: str,
    speed: str = "slow",
    seed: int = 0,
    path: str | os.PathLike | None = None,
    *,
    size: int = WORLD_FRAME_SIZE,
    codec: str = "h264",
) -> bytes | str:
    """Write a world video as mp4 and return its path, or its bytes when `path` is None.

    The same arguments give the same bytes (the encoder runs on one thread).

    Args:
        colour, shape, direction, speed (`str`): the scene; keys of `WORLD_COLOURS`, `WORLD_SHAPES`,
            `WORLD_DIRECTIONS` and `WORLD_SPEEDS`.
        seed (`int`): first position, texture and background.
        path (`str`, *optional*): where to write (an mp4 file; written whole or not at all).
        size (`int`, *optional*, defaults to 96): frame width and height, even.
        codec (`str`, *optional*, defaults to `"h264"`): `"h264"` (lossless libx264, or `"mpeg4"` when PyAV lacks
            it) or `"mpeg4"` (MPEG-4 Part 2 at 4 Mb/s).

    Raises:
        `InvalidInputError`: an unknown attribute or codec, a bad size or seed.
        `OutputError`: `path` cannot be written.
    """
    if codec not in ("h264", "mpeg4"):
        raise InvalidInputError(f"the world video codec must be 'h264' or 'mpeg4', got {codec!r}.")
    frames = world_video_frames(colour, shape, direction, speed, seed, size=size)
    encoder = "libx264" if codec == "h264" and "libx264" in av.codecs_available else "mpeg4"
    options = {"threads": "1", "qp": "0"} if encoder == "libx264" else {"threads": "1"}
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(encoder, rate=WORLD_FPS, options=options)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        if encoder == "mpeg4":
            stream.bit_rate = 4_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    data = buffer.getvalue()
    if path is None:
        return data
    _write_atomically(os.fspath(path), data)
    return os.fspath(path)


def _write_atomically(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".world-", suffix=".mp4.tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.chmod(temporary, 0o644)  # mkstemp makes the file private
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise
    except OSError as error:
        raise OutputError(f"{path}: cannot write the world video ({error}); choose a writable folder.") from error


WORLD_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "video": datasets.Value("string"),
        "colour": datasets.Value("string"),
        "shape": datasets.Value("string"),
        "direction": datasets.Value("string"),
        "speed": datasets.Value("string"),
        "caption": datasets.Value("string"),
        "conversations": datasets.List({"from": datasets.Value("string"), "value": datasets.Value("string")}),
        "video_seed": datasets.Value("int64"),
    }
)


def _balanced_attributes(num_samples: int, rng: np.random.Generator) -> list[tuple[str, str, str, str]]:
    """`(colour, shape, direction, speed)` per sample: balanced in blocks of 4 and 8, complete in cycles of 128.

    Block `(a, b, s)` holds, for `r` = 0..3 in a shuffled order, colour `r`, shape `(r + a) % 4` and direction
    `(r + b) % 4` at speed `s`, so each block of 4 samples has every colour, shape and direction once. A cycle of 32
    blocks covers each of the 128 combinations once (`(r, a, b, s) -> (r, r + a, r + b, s)` is one-to-one): its first
    half takes the 16 pairs `(a, b)` in a shuffled order at alternating speeds, its second half the same pairs of
    consecutive blocks, in another order, with their speeds swapped. So every 8 aligned samples hold each speed 4
    times.
    """
    colours, directions, speeds = list(WORLD_COLOURS), list(WORLD_DIRECTIONS), list(WORLD_SPEEDS)
    pairs = [(a, b) for a in range(4) for b in range(4)]
    attributes = []
    while len(attributes) < num_samples:
        flip = int(rng.integers(2))
        first_half = [(pairs[pair], (position + flip) % 2) for position, pair in enumerate(rng.permutation(16))]
        second_half = []
        for couple in rng.permutation(8):
            (pair, speed), (other_pair, other_speed) = first_half[2 * couple], first_half[2 * couple + 1]
            second_half += [(other_pair, speed), (pair, other_speed)]
        for (a, b), s in first_half + second_half:
            for r in rng.permutation(4):
                attributes.append((colours[r], WORLD_SHAPES[(r + a) % 4], directions[(r + b) % 4], speeds[s]))
    return attributes[:num_samples]


def _conversation(attributes: dict[str, str], kinds: list[str]) -> list[dict[str, str]]:
    questions = world_questions()
    turns = []
    for index, kind in enumerate(kinds):
        prefix = f"{VIDEO_PLACEHOLDER}\n" if index == 0 else ""
        turns.append({"from": "human", "value": prefix + questions[kind].question})
        turns.append({"from": "gpt", "value": attributes[kind]})
    return turns


def world_dataset(
    num_samples: int,
    output_dir: str | os.PathLike,
    seed: int = 0,
    split: str = "train",
    *,
    num_turns: int = 3,
    size: int = WORLD_FRAME_SIZE,
    scenes_in_every_direction: bool = False,
) -> datasets.Dataset:
    """Write `num_samples` world videos into `output_dir` and return them as a `datasets.Dataset`.

    With `scenes_in_every_direction`, each aligned group of 4 samples is one scene (colour, shape, speed, texture and
    start position) moving in each of the 4 directions, so that the keyframe, identical in the 4, cannot tell the
    direction: a model trained on it must read the motion.

    Columns: `id` (`"{split}-{index:05d}"`), `video` (the mp4 path), `colour`, `shape`, `direction`, `speed`,
    `caption`, `conversations` (LLaVA-style `[{"from": "human" | "gpt", "value": str}]`, the first human turn
    starting with `"<video>\\n"`, one-word answers) and `video_seed`.

    The attributes are balanced, in an order shuffled with `seed` and `split`: every 4 aligned samples (indices
    `4k` to `4k + 3`) hold each colour, shape and direction once, every 8 each speed 4 times, and every 128 each
    combination once. Sample `i` asks first about kind `(i + k) % 3` (colour, shape, direction; `k` seeded), then
    the next ones in that cyclic order, so with `num_turns=1` each kind is asked equally often. Each video's seed
    comes from `(seed, split, index)`, so another split (e.g. `"test"`) repeats the combinations with other
    positions and textures, never the same video. Files are named after everything that determines their content
    and reused when they already exist (a rerun writes nothing).

    Args:
        num_samples (`int`): number of videos, at least 1.
        output_dir (`str`): folder for the videos (created if missing).
        seed (`int`, *optional*, defaults to 0): seed of the order, the questions and the videos.
        split (`str`, *optional*, defaults to `"train"`): split name, part of the ids and of the seeds.
        num_turns (`int`, *optional*, defaults to 3): questions per conversation, 1 to 3.
        size (`int`, *optional*, defaults to 96): frame size of the videos.

    Raises:
        `InvalidInputError`: a bad count, seed, split, number of turns or size.
        `OutputError`: `output_dir` cannot be written.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise InvalidInputError(f"num_samples must be a positive integer, got {num_samples!r}.")
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", split):
        raise InvalidInputError(f"split must be a name of letters, digits, '_', '.' or '-', got {split!r}.")
    kinds = list(world_questions())
    if isinstance(num_turns, bool) or not isinstance(num_turns, int) or not 1 <= num_turns <= len(kinds):
        raise InvalidInputError(f"num_turns must be an integer from 1 to {len(kinds)}, got {num_turns!r}.")
    _check_size_and_seed(size, seed)
    output_dir = os.fspath(output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{output_dir}: cannot create the folder for the world videos ({error}).") from error

    split_code = zlib.crc32(split.encode("utf-8"))
    rng = np.random.default_rng([int(seed), split_code])
    first_kind = int(rng.integers(len(kinds)))
    rows = []
    attribute_rows = list(_balanced_attributes(num_samples, rng))
    for index, (colour, shape, direction, speed) in enumerate(attribute_rows):
        scene = index
        if scenes_in_every_direction:
            # Aligned groups of 4: one scene (the first's colour, shape, speed and seed) moving in the 4 directions.
            scene = index - index % len(WORLD_DIRECTIONS)
            colour, shape, _, speed = attribute_rows[scene]
            direction = list(WORLD_DIRECTIONS)[index % len(WORLD_DIRECTIONS)]
        video_seed = int(np.random.SeedSequence([int(seed), split_code, scene]).generate_state(1, np.uint64)[0] >> 1)
        attributes = {"colour": colour, "shape": shape, "direction": direction, "speed": speed}
        asked = [kinds[(index + first_kind + turn) % len(kinds)] for turn in range(num_turns)]
        name = f"world{WORLD_VERSION}-{size}px-{colour}-{shape}-{direction}-{speed}-{video_seed:019d}.mp4"
        path = os.path.join(output_dir, name)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            make_world_video(colour, shape, direction, speed, video_seed, path, size=size)
        rows.append(
            {
                "id": f"{split}-{index:05d}",
                "video": path,
                **attributes,
                "caption": world_caption(colour, shape, direction, speed),
                "conversations": _conversation(attributes, asked),
                "video_seed": video_seed,
            }
        )
    return datasets.Dataset.from_list(rows, features=WORLD_FEATURES)


def world_tokenizer_corpus() -> list[str]:
    """The training text of `build_world_tokenizer`.

    The answer words (and speed words) 8 times, so that their merges come first; the chat template's fixed text
    (system prompt, `USER:`, `ASSISTANT:`, the answer separator) and the questions twice, since a pair must occur
    twice to be merged; one caption per combination.
    """
    words = [option for question in _QUESTIONS for option in question.options]
    words += [word for speed in WORLD_SPEEDS for word in (speed, WORLD_SPEED_ADVERBS[speed])]
    template = [DEFAULT_SYSTEM_PROMPT, f"USER: ASSISTANT:{ANSWER_SEPARATOR.replace('</s>', '')}"]
    questions = [question.question for question in _QUESTIONS]
    questions += [f"\n{question}" for question in questions]
    captions = [
        world_caption(colour, shape, direction, speed)
        for colour in WORLD_COLOURS
        for shape in WORLD_SHAPES
        for direction in WORLD_DIRECTIONS
        for speed in WORLD_SPEEDS
    ]
    return [" ".join(words)] * 8 + (template + questions) * 2 + captions


def build_world_tokenizer(layout: VideoLaVITTokenLayout) -> LlamaTokenizer:
    """A LLaMA-style tokenizer for the world with the Video-LaVIT tokens of `layout`; offline and deterministic.

    Its text part is `build_llama_style_tokenizer(world_tokenizer_corpus(), layout.text_vocab_size)`. With
    `text_vocab_size=WORLD_TEXT_VOCAB_SIZE` (512) every answer word is one token; smaller vocabularies work but
    split answers into pieces.

    Raises:
        `InvalidInputError`: `layout.text_vocab_size` is under 275.
    """
    tokenizer = build_llama_style_tokenizer(world_tokenizer_corpus(), layout.text_vocab_size)
    return add_video_lavit_tokens(tokenizer, layout)


__all__ = [
    "WORLD_COLOURS",
    "WORLD_DIRECTIONS",
    "WORLD_FEATURES",
    "WORLD_FPS",
    "WORLD_FRAME_SIZE",
    "WORLD_NUM_FRAMES",
    "WORLD_SHAPES",
    "WORLD_SHAPE_FRACTION",
    "WORLD_SPEEDS",
    "WORLD_SPEED_ADVERBS",
    "WORLD_TEXT_VOCAB_SIZE",
    "WORLD_VERSION",
    "WorldQuestion",
    "build_world_tokenizer",
    "make_world_video",
    "score_world_answer",
    "world_caption",
    "world_dataset",
    "world_questions",
    "world_shape_positions",
    "world_tokenizer_corpus",
    "world_video_frames",
]
