"""Videos and images to token shards: what the language-model stages train on, computed once.

A training step on pre-tokenized data costs what the language model costs: no video decoding and no tokenizer
forward. `PrepareWorker` turns a batch of source rows (`training.sources`) into prepared rows: per clip, the
keyframe's codes (a generation checkpoint, `keyframe_input="codes"`) or features (an understanding checkpoint,
`"features"`), the 135 motion codes, and the clip's start time and valid frames; an image is one keyframe. Without
tokenizers it keeps each clip's motion grid instead (the motion tokenizer's own training data). It is a callable
class, so the same object runs under `datasets.Dataset.map(num_proc=N)` on one machine and as a Ray Data actor pool
on a cluster (the tokenizers are loaded once per process, on first use).

`prepare_corpus` runs it over a corpus in shards of `shard_size` samples and writes, under the output folder:

    prepare.json               the settings (checked when a run resumes)
    data/shard-00000.parquet   the prepared rows of `PREPARED_FEATURES`, one file per shard, written atomically
    errors/shard-00000.jsonl   one line per sample that failed: id, path, error class, message
    errors.jsonl, summary.json all failures, and the counts of the whole run

A shard whose Parquet file exists is skipped, so a re-run resumes where a stopped one ended. A broken, missing or
unsupported video, or a conversation whose placeholders do not match its media, never stops the job: the sample is
recorded in the error report and counted in the summary. `load_prepared` reads the shards back as one dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from PIL import Image
from safetensors import safe_open
from tqdm.auto import tqdm

from ..errors import InvalidInputError, OutputError, VideoDecodeError, VideoLaVITError
from ..files import replace_file
from ..media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer
from ..media_tokenizers.modeling_visual_tokenizer import VideoLaVITVisualTokenizer
from ..modeling.configuration_video_lavit import VideoLaVITConfig
from ..modeling.modeling_video_lavit import tokenize_keyframes
from ..processing.processing_video_lavit import load_image_file
from ..processing.video_processing_video_lavit import VideoLaVITVideoProcessor, without_run_only_options
from .sources import SOURCE_FEATURES, read_source

MOTION_GRID_SHAPE = (2, 24, 20, 36)
logger = logging.getLogger(__name__)

PREPARED_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "media": datasets.Value("string"),
        "path": datasets.Value("string"),
        "text": datasets.Value("string"),
        "conversations": SOURCE_FEATURES["conversations"],
        "keyframe_input": datasets.Value("string"),
        "clip_start_times": datasets.List(datasets.Value("float64")),
        "clip_num_frames": datasets.List(datasets.Value("int32")),
        "keyframe_codes": datasets.List(datasets.List(datasets.Value("int32"))),
        "keyframe_features": datasets.List(datasets.List(datasets.List(datasets.Value("float32")))),
        "motion_codes": datasets.List(datasets.List(datasets.Value("int32"))),
        "motion_vectors": datasets.List(datasets.Array4D(shape=MOTION_GRID_SHAPE, dtype="float32")),
    }
)
"""One prepared sample. `keyframe_input` is `"codes"`, `"features"` or `"none"` (no tokenizers: `motion_vectors`
holds each clip's grid and there are no keyframe tokens). Keyframes are the clips' (in order), or the one image."""
_WORKER_FEATURES = datasets.Features(
    {**PREPARED_FEATURES, "error_class": datasets.Value("string"), "error_message": datasets.Value("string")}
)
PLACEHOLDERS = {"video": "<video>", "image": "<image>"}
_SHARD_NAME = re.compile(r"shard-\d{5,}\.parquet")
_ERROR_NAME = re.compile(r"shard-\d{5,}\.jsonl")


@dataclass
class MediaTokenizers:
    """The two media tokenizers of a Video-LaVIT language model, without the language model's weights.

    Args:
        visual_tokenizer ([`VideoLaVITVisualTokenizer`]): the keyframe tokenizer.
        motion_tokenizer ([`VideoLaVITMotionTokenizer`]): the motion tokenizer.
        keyframe_input (`str`): `"codes"` or `"features"`, as the language model reads keyframes.
        keyframe_selection (`str`): how the keyframe tokenizer keeps tokens (the model config's).
    """

    visual_tokenizer: VideoLaVITVisualTokenizer
    motion_tokenizer: VideoLaVITMotionTokenizer
    keyframe_input: str = "codes"
    keyframe_selection: str = "threshold"

    @classmethod
    def from_model(cls, model) -> MediaTokenizers:
        """The tokenizers of a loaded [`VideoLaVITForConditionalGeneration`] or [`VideoLaVITModel`] (shared)."""
        base = model.model if hasattr(model, "model") and hasattr(model.model, "visual_tokenizer") else model
        config = base.config
        return cls(base.visual_tokenizer, base.motion_tokenizer, config.keyframe_input, config.keyframe_selection)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, dtype: torch.dtype = torch.float32) -> MediaTokenizers:
        """Load only the tokenizers' weights of a saved Video-LaVIT language model folder (not the 7B decoder)."""
        folder = os.fspath(folder)
        config = _local_config(folder)
        visual = VideoLaVITVisualTokenizer(config.visual_tokenizer_config)
        motion = VideoLaVITMotionTokenizer(config.motion_tokenizer_config)
        states = {"visual_tokenizer.": {}, "motion_tokenizer.": {}}
        files = sorted(name for name in os.listdir(folder) if name.endswith(".safetensors"))
        if not files:
            raise InvalidInputError(f"{folder}: holds no .safetensors weights.")
        for name in files:
            with safe_open(os.path.join(folder, name), framework="pt") as file:
                for key in file.keys():
                    inner = key.removeprefix("model.")
                    for prefix, state in states.items():
                        if inner.startswith(prefix):
                            state[inner[len(prefix) :]] = file.get_tensor(key)
        for prefix, module in (("visual_tokenizer.", visual), ("motion_tokenizer.", motion)):
            missing, unexpected = module.load_state_dict(states[prefix], strict=False)
            if missing or unexpected:
                raise InvalidInputError(
                    f"{folder}: the {prefix[:-1]} weights do not match its config ({len(missing)} missing, "
                    f"{len(unexpected)} unexpected, e.g. {(missing or unexpected)[0]})."
                )
        visual, motion = visual.to(dtype).eval(), motion.to(dtype).eval()
        return cls(visual, motion, config.keyframe_input, config.keyframe_selection)

    def fingerprint(self) -> str:
        """A SHA-256 of both tokenizers' weights and buffers and of how keyframes are read: what makes the tokens.
        It keys a resumed preparation made with tokenizers held in memory."""
        digest = hashlib.sha256(f"{self.keyframe_input}:{self.keyframe_selection}".encode())
        for prefix, module in (("visual:", self.visual_tokenizer), ("motion:", self.motion_tokenizer)):
            for name, tensor in sorted(module.state_dict().items()):
                digest.update(f"{prefix}{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
                digest.update(tensor.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def to(self, device) -> MediaTokenizers:
        self.visual_tokenizer.to(device)
        self.motion_tokenizer.to(device)
        return self


def _local_config(folder: str) -> VideoLaVITConfig:
    """The configuration of a local model folder (never a download)."""
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise InvalidInputError(
            f"{folder}: not a saved Video-LaVIT language model folder (no config.json); pass the folder written by "
            "`video-lavit convert language-model` or save_pretrained."
        )
    return VideoLaVITConfig.from_pretrained(folder, local_files_only=True)


class PrepareWorker:
    """A callable over batches of source rows (dict of columns) that returns batches of prepared rows.

    Args:
        tokenizers (`str`, *optional*): a saved Video-LaVIT language model folder; its tokenizers are loaded on the
            first call (in each worker process). Without it (and without `media_tokenizers`) each clip's motion grid
            is kept instead of tokens.
        media_tokenizers ([`MediaTokenizers`], *optional*): tokenizers already loaded, used as they are.
        video_processor ([`VideoLaVITVideoProcessor`], *optional*): cuts the videos (default: the one saved in the
            `tokenizers` folder, as inference cuts them; else default settings with keyframes at the keyframe
            tokenizer's input size).
        processor_options (`dict`, *optional*): per-call options of the video processor (e.g. `max_clips`).
        device (`str`, *optional*): where the tokenizers run (default: CUDA when there is one, else the CPU).
        keyframe_batch_size, motion_batch_size (`int`): keyframes / clips per tokenizer forward.

    The output has the columns of `PREPARED_FEATURES` plus `error_class` / `error_message` (None for a prepared
    sample). Called with a `pyarrow.Table` (Ray Data's `batch_format="pyarrow"`), it returns one.
    """

    def __init__(
        self,
        tokenizers: str | os.PathLike | None = None,
        media_tokenizers: MediaTokenizers | None = None,
        video_processor: VideoLaVITVideoProcessor | None = None,
        processor_options: dict | None = None,
        device: str | None = None,
        keyframe_batch_size: int = 16,
        motion_batch_size: int = 16,
    ):
        self.tokenizers_path = os.fspath(tokenizers) if tokenizers is not None else None
        self.media_tokenizers = media_tokenizers
        self.video_processor = video_processor
        self.processor_options = dict(processor_options or {})
        self.processor_options.setdefault("progress", False)
        self.device = device
        self.keyframe_batch_size = keyframe_batch_size
        self.motion_batch_size = motion_batch_size
        self._parent_pid = os.getpid()

    @property
    def keyframe_input(self) -> str:
        if self.media_tokenizers is not None:
            return self.media_tokenizers.keyframe_input
        if self.tokenizers_path is not None:
            return _local_config(self.tokenizers_path).keyframe_input
        return "none"

    def _saved_video_processor(self) -> VideoLaVITVideoProcessor | None:
        """The video processor saved with the tokenizers' model folder (its keyframe size, frame rate, clip length),
        as inference cuts the videos; None when the folder has none."""
        if self.tokenizers_path is None or not os.path.isdir(self.tokenizers_path):
            return None
        names = ("processor_config.json", "video_preprocessor_config.json", "preprocessor_config.json")
        if not any(os.path.isfile(os.path.join(self.tokenizers_path, name)) for name in names):
            return None
        try:
            return VideoLaVITVideoProcessor.from_pretrained(self.tokenizers_path)
        except VideoLaVITError:  # a processor file without video processor settings: the defaults
            return None

    def _tokenizers(self) -> MediaTokenizers | None:
        if self.media_tokenizers is None and self.tokenizers_path is not None:
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.media_tokenizers = MediaTokenizers.from_pretrained(self.tokenizers_path).to(device)
        if self.video_processor is None:
            self.video_processor = self._saved_video_processor()
        if self.video_processor is None:
            size = 224
            if self.media_tokenizers is not None:
                size = self.media_tokenizers.visual_tokenizer.config.image_size
            self.video_processor = VideoLaVITVideoProcessor(size={"height": size, "width": size})
        return self.media_tokenizers

    def __call__(self, batch):
        if os.getpid() != self._parent_pid:
            # A worker process forked by `datasets.map(num_proc=N)`: the parent's OpenMP thread pool does not survive a
            # fork, and one thread per process is what N processes on N cores want anyway.
            torch.set_num_threads(1)
            self._parent_pid = os.getpid()
        arrow = not isinstance(batch, Mapping)
        columns = batch.to_pydict() if arrow else batch
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        tokenizers = self._tokenizers()
        keyframe_input = tokenizers.keyframe_input if tokenizers is not None else "none"
        outputs, pending = [], []
        for row in rows:
            output = {name: row.get(name) for name in ("id", "media", "path", "text")}
            output.update(
                conversations=row.get("conversations") or [],
                keyframe_input=keyframe_input,
                clip_start_times=[],
                clip_num_frames=[],
                keyframe_codes=[],
                keyframe_features=[],
                motion_codes=[],
                motion_vectors=[],
                error_class=None,
                error_message=None,
            )
            try:
                keyframes, grids = self._read_media(row, output)
                pending.append((output, keyframes, grids))
            except Exception as error:  # recorded per sample: a bad input never stops the job
                output.update(error_class=type(error).__name__, error_message=str(error))
            outputs.append(output)
        self._tokenize(pending, tokenizers)
        if not arrow:
            return {name: [output[name] for output in outputs] for name in _WORKER_FEATURES}
        return datasets.Dataset.from_list(outputs, features=_WORKER_FEATURES).data.table

    def _read_media(self, row: dict, output: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Check the sample and read its media: the keyframes' pixel values and the clips' motion grids."""
        media, name = row["media"], row.get("path") or f"sample {row['id']}"
        turns = row.get("conversations") or []
        if turns:
            _check_placeholders(row["id"], media, turns)
        if media == "text":
            if not turns and not (row.get("text") or "").strip():
                raise InvalidInputError(f"sample {row['id']}: has no media and no text.")
            return [], []
        source = {"path": row.get("path"), "bytes": row["media_bytes"]} if row.get("media_bytes") else row["path"]
        if media == "image":
            if isinstance(source, dict):
                try:
                    image = Image.open(io.BytesIO(source["bytes"])).convert("RGB")
                except OSError as error:
                    raise InvalidInputError(f"{name}: not a readable image ({error}).") from error
            else:
                image = load_image_file(source)
            return [self.video_processor.preprocess_keyframe(image)], []
        if media != "video":
            raise InvalidInputError(f"sample {row['id']}: unknown media {media!r}.")
        keyframes, grids = [], []
        for clip, pixel_values in self.video_processor.iter_clips(source, **self.processor_options):
            keyframes.append(pixel_values)
            grids.append(clip.motion_vectors)
            output["clip_start_times"].append(float(clip.start_time))
            output["clip_num_frames"].append(int(clip.num_valid_frames))
        if not keyframes:
            raise VideoDecodeError(f"{name}: no clip could be cut from the video.")
        return keyframes, grids

    @torch.no_grad()
    def _tokenize(self, pending: list, tokenizers: MediaTokenizers | None) -> None:
        """Fill the token columns of the samples read, with batched tokenizer forwards over the whole batch."""
        if tokenizers is None:
            for output, _, grids in pending:
                output["motion_vectors"] = [grid.numpy() for grid in grids]
            return
        keyframes = [pixels for _, pixels_list, _ in pending for pixels in pixels_list]
        grids = [grid for _, _, grid_list in pending for grid in grid_list]
        keyframe_tokens = []
        for start in range(0, len(keyframes), self.keyframe_batch_size):
            device = next(tokenizers.visual_tokenizer.parameters()).device
            pixel_values = torch.stack(keyframes[start : start + self.keyframe_batch_size]).to(device)
            tokens = tokenize_keyframes(
                tokenizers.visual_tokenizer,
                pixel_values,
                tokenizers.keyframe_input,
                tokenizers.keyframe_selection,
            )
            counts = tokens.token_counts.tolist()
            values = tokens.codes if tokenizers.keyframe_input == "codes" else tokens.features.float()
            keyframe_tokens.extend(part.cpu() for part in values.split(counts))
        motion_codes = []
        device = next(tokenizers.motion_tokenizer.parameters()).device
        for start in range(0, len(grids), self.motion_batch_size):
            grid = torch.stack(grids[start : start + self.motion_batch_size]).to(device)
            motion_codes.extend(tokenizers.motion_tokenizer.encode(grid).indices.cpu())
        keyframe_iter, motion_iter = iter(keyframe_tokens), iter(motion_codes)
        for output, pixels_list, grid_list in pending:
            tokens = [next(keyframe_iter) for _ in pixels_list]
            if tokenizers.keyframe_input == "codes":
                output["keyframe_codes"] = [value.tolist() for value in tokens]
            else:
                output["keyframe_features"] = [value.numpy() for value in tokens]
            output["motion_codes"] = [next(motion_iter).tolist() for _ in grid_list]


def _check_placeholders(sample_id: str, media: str, turns: list[dict]) -> None:
    """A conversation names its media once, with the placeholder of its kind, in a human turn."""
    counts = {kind: 0 for kind in PLACEHOLDERS}
    for turn in turns:
        for kind, placeholder in PLACEHOLDERS.items():
            found = turn["value"].count(placeholder)
            if found and turn["from"] != "human":
                raise InvalidInputError(
                    f"sample {sample_id}: a {placeholder} placeholder is in a {turn['from']} turn; media go in the "
                    "human turns."
                )
            counts[kind] += found
    expected = {kind: int(media == kind) for kind in PLACEHOLDERS}
    if counts != expected:
        given = f"one {media}" if media in PLACEHOLDERS else "no media"
        raise InvalidInputError(
            f"sample {sample_id}: the conversation holds {counts['video']} <video> and {counts['image']} <image> "
            f"placeholder(s) but the sample has {given}; put exactly one placeholder for its media in a human turn."
        )


@dataclass
class PrepareSummary:
    """What `prepare_corpus` did.

    Attributes:
        output_dir (`str`): the output folder.
        samples (`int`): samples in the source.
        prepared (`int`): samples written to the shards (in this run and earlier ones).
        failed (`int`): samples recorded in the error report.
        clips (`int`): clips written (videos' clips; an image counts as none).
        shards (`int`): shards of the corpus.
        shards_skipped (`int`): shards already written by an earlier run.
        errors_path (`str`): the error report (`errors.jsonl`).
    """

    output_dir: str
    samples: int = 0
    prepared: int = 0
    failed: int = 0
    clips: int = 0
    shards: int = 0
    shards_skipped: int = 0
    errors_path: str = ""
    keyframe_input: str = "none"
    error_classes: dict = field(default_factory=dict)


def prepare_corpus(
    source,
    output_dir: str | os.PathLike,
    tokenizers: str | os.PathLike | None = None,
    media_tokenizers: MediaTokenizers | None = None,
    num_proc: int = 1,
    engine: str = "datasets",
    shard_size: int = 256,
    batch_size: int = 4,
    media_root: str | os.PathLike | None = None,
    video_processor: VideoLaVITVideoProcessor | None = None,
    processor_options: dict | None = None,
    num_gpus: float | None = None,
    progress: bool = True,
) -> PrepareSummary:
    """Prepare a corpus into token shards (see the module docstring for the layout).

    Args:
        source: a path or `datasets.Dataset` that `read_source` reads.
        output_dir: the folder to write; an existing one is resumed (its settings must be the same).
        tokenizers: a saved Video-LaVIT language model folder whose tokenizers make the tokens.
        media_tokenizers ([`MediaTokenizers`], *optional*): loaded tokenizers instead of `tokenizers`.
        num_proc (`int`): processes of `datasets.Dataset.map` (engine `"datasets"`), or Ray actors (`"ray"`).
        engine (`str`): `"datasets"` (one machine) or `"ray"` (Ray Data; needs `pip install video-lavit[ray]` and
            uses the running Ray cluster, or starts a local one).
        shard_size (`int`): samples per output shard (the unit that a re-run skips).
        batch_size (`int`): samples per worker call (their keyframes and clips are tokenized together).
        media_root: the folder that relative media paths of the source are relative to.
        video_processor, processor_options: how the videos are cut (default: the video processor saved in the
            `tokenizers` folder, else default settings; 16 clips at most).
        num_gpus (`float`, *optional*): GPUs per Ray actor (default: 1 where the cluster has GPUs, else 0).
        progress (`bool`): show a progress bar.

    Returns:
        [`PrepareSummary`], also written to `summary.json`.
    """
    if engine not in ("datasets", "ray"):
        raise InvalidInputError(f"engine must be 'datasets' or 'ray', got {engine!r}.")
    for name, value in (("num_proc", num_proc), ("shard_size", shard_size), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")
    rows = read_source(source, media_root)
    output_dir = os.fspath(output_dir)
    worker = PrepareWorker(tokenizers, media_tokenizers, video_processor, processor_options)
    if num_proc > 1:
        # Several workers (processes here, Ray actors that each reserve one CPU) share the cores: the video reader's
        # own threads would compete with the other workers.
        worker.processor_options.setdefault("pipeline", False)
    settings = {
        "source": _describe_source(source),
        "samples": len(rows),
        "shard_size": shard_size,
        "keyframe_input": worker.keyframe_input,
        "tokenizers": worker.tokenizers_path,
        "tokenizers_fingerprint": media_tokenizers.fingerprint() if media_tokenizers is not None else None,
        "processor_options": without_run_only_options(worker.processor_options),
    }
    _start_output(output_dir, settings)
    num_shards = -(-len(rows) // shard_size)
    summary = PrepareSummary(output_dir, samples=len(rows), shards=num_shards, keyframe_input=worker.keyframe_input)
    run = dict(
        output_dir=output_dir,
        worker=worker,
        engine=engine,
        num_proc=num_proc,
        batch_size=batch_size,
    )
    if engine == "ray":
        unfinished = [
            index
            for index in range(num_shards)
            if not os.path.exists(os.path.join(output_dir, "data", f"shard-{index:05d}.parquet"))
        ]
        run["ray_shards"] = _RayShards(rows, unfinished, shard_size, worker, num_proc, batch_size, num_gpus, progress)
    with (
        _datasets_progress(progress),
        tqdm(total=len(rows), desc="preparing", unit="sample", disable=not progress) as bar,
    ):
        for index in range(num_shards):
            shard = rows.select(range(index * shard_size, min(len(rows), (index + 1) * shard_size)))
            if os.path.exists(os.path.join(output_dir, "data", f"shard-{index:05d}.parquet")):
                summary.shards_skipped += 1
            else:
                _prepare_shard(shard, index, run)
            bar.update(len(shard))
        _finish_summary(summary)
    return summary


@contextlib.contextmanager
def _datasets_progress(enabled: bool):
    """`datasets`' own progress bars off inside the block when `enabled` is False."""
    was_enabled = datasets.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            datasets.enable_progress_bars()


def _prepare_shard(shard: datasets.Dataset, index: int, run: dict) -> None:
    """Write shard `index`: its prepared rows and its error report (the Parquet file last, marking it done)."""
    output_dir = run["output_dir"]
    if run["engine"] == "ray":
        mapped = run["ray_shards"].shard(index)
    else:
        num_proc = run["num_proc"] if run["num_proc"] > 1 and len(shard) > 1 else None
        mapped = shard.map(
            run["worker"],
            batched=True,
            batch_size=run["batch_size"],
            num_proc=num_proc,
            remove_columns=shard.column_names,
            features=_WORKER_FEATURES,
            new_fingerprint=f"video-lavit-prepare-{index}",
            keep_in_memory=True,
            desc=f"shard {index + 1}",
        )
    table = mapped.data.table
    failed = pc.is_valid(table["error_class"])
    records = table.filter(failed).select(["id", "path", "error_class", "error_message"]).to_pylist()
    _write_text(
        os.path.join(output_dir, "errors", f"shard-{index:05d}.jsonl"),
        "".join(json.dumps(record) + "\n" for record in records),
    )
    good = table.filter(pc.invert(failed)).drop(["error_class", "error_message"])
    with replace_file(os.path.join(output_dir, "data", f"shard-{index:05d}.parquet")) as file:
        pq.write_table(good.cast(PREPARED_FEATURES.arrow_schema), file)


def _describe_source(source) -> str:
    """What identifies the source on a resume: its absolute path, or the dataset's fingerprint."""
    if isinstance(source, (str, os.PathLike)):
        return os.path.abspath(os.fspath(source))
    if isinstance(source, datasets.Dataset):
        return f"datasets.Dataset {source._fingerprint}"
    return f"{len(source)} paths" if isinstance(source, (list, tuple)) else type(source).__name__


def _start_output(output_dir: str, settings: dict) -> None:
    settings_path = os.path.join(output_dir, "prepare.json")
    if os.path.exists(settings_path):
        with open(settings_path, encoding="utf-8") as file:
            previous = json.load(file)
        if previous != json.loads(json.dumps(settings)):
            changed = sorted(key for key in set(previous) | set(settings) if previous.get(key) != settings.get(key))
            raise OutputError(
                f"{output_dir}: holds a preparation with other settings ({', '.join(changed)} differ); resume it "
                "with the same settings, or write to a new folder."
            )
    elif os.path.isdir(output_dir) and os.listdir(output_dir):
        raise OutputError(f"{output_dir}: exists and is not a preparation folder; choose an empty or new folder.")
    for folder in ("data", "errors"):
        os.makedirs(os.path.join(output_dir, folder), exist_ok=True)
    _write_text(settings_path, json.dumps(settings, indent=2))


def _finish_summary(summary: PrepareSummary) -> None:
    """Count what every shard holds (this run's and earlier runs'), and write `errors.jsonl` and `summary.json`."""
    output_dir = summary.output_dir
    # Only finished reports: a killed run may leave a partial temporary file beside them.
    error_files = sorted(
        name for name in os.listdir(os.path.join(output_dir, "errors")) if _ERROR_NAME.fullmatch(name)
    )
    summary.errors_path = os.path.join(output_dir, "errors.jsonl")
    lines = []
    for name in error_files:
        with open(os.path.join(output_dir, "errors", name), encoding="utf-8") as file:
            lines.extend(file)
    for line in lines:
        error_class = json.loads(line)["error_class"]
        summary.error_classes[error_class] = summary.error_classes.get(error_class, 0) + 1
    summary.failed = len(lines)
    _write_text(summary.errors_path, "".join(lines))
    summary.prepared = summary.clips = 0
    for path in _shard_files(output_dir):  # one column read at a time: the shards may not fit in memory
        starts = pq.read_table(path, columns=["clip_start_times"])["clip_start_times"]
        summary.prepared += len(starts)
        summary.clips += int(pc.sum(pc.list_value_length(starts)).as_py() or 0)
    _write_text(os.path.join(output_dir, "summary.json"), json.dumps(asdict(summary), indent=2))


def _write_text(path: str, text: str) -> None:
    with replace_file(path) as file:
        file.write(text.encode("utf-8"))


def load_prepared(output_dir: str | os.PathLike) -> datasets.Dataset:
    """The prepared samples of every shard written under `output_dir`, as one `datasets.Dataset`."""
    files = [path for path in _shard_files(output_dir) if pq.ParquetFile(path).metadata.num_rows]
    if not files:  # (a shard may hold only failures)
        return datasets.Dataset.from_list([], features=PREPARED_FEATURES)
    # Memory-mapped from `datasets`' cache, not read into memory: a corpus may be far larger than it.
    return datasets.Dataset.from_parquet(files, features=PREPARED_FEATURES)


def _shard_files(output_dir: str | os.PathLike) -> list[str]:
    folder = os.path.join(os.fspath(output_dir), "data")
    if not os.path.isdir(folder):
        raise InvalidInputError(
            f"{output_dir}: not a prepared corpus (no data/ folder); write one with `video-lavit prepare`."
        )
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if _SHARD_NAME.fullmatch(name))


class _RayShards:
    """The unfinished shards of a run, mapped by one Ray Data actor pool (its actors load the tokenizers once).

    Each shard is cut into blocks of whole batches, up to `concurrency` of them, so that its rows spread over the
    actors. The rows carry their row number (`_row`) through the actors: `shard(index)` gathers shard `index`'s rows
    as the blocks come back, in whatever order they finish, and returns them in the source order. Ray starts on the
    first call, so a run whose shards are all written starts none.
    """

    def __init__(
        self,
        rows: datasets.Dataset,
        indices: list[int],
        shard_size: int,
        worker: PrepareWorker,
        concurrency: int,
        batch_size: int,
        num_gpus: float | None,
        progress: bool,
    ):
        self.rows, self.shard_size, self.worker = rows, shard_size, worker
        self.concurrency, self.batch_size, self.num_gpus, self.progress = concurrency, batch_size, num_gpus, progress
        self.parts = {index: [] for index in indices}
        self.missing = {index: min(len(rows), (index + 1) * shard_size) - index * shard_size for index in indices}
        self.blocks = None
        self.shared_tokenizers = []

    def shard(self, index: int) -> datasets.Dataset:
        if self.blocks is None:
            self.blocks = self._start()
        while self.missing[index]:
            block = next(self.blocks, None)
            if block is None:
                raise OutputError(
                    f"shard {index}: Ray Data returned {self.missing[index]} row(s) fewer than it was given."
                )
            shard_numbers = pc.divide(block["_row"], self.shard_size)
            for number in pc.unique(shard_numbers).to_pylist():
                part = block.filter(pc.equal(shard_numbers, number))
                self.parts[number].append(part)
                self.missing[number] -= len(part)
        table = pa.concat_tables(self.parts.pop(index)).sort_by("_row").drop_columns(["_row"])
        if not self.parts:
            for _ in self.blocks:  # run the pool to its end, so that its actors exit now
                pass
        return datasets.Dataset(table).cast(_WORKER_FEATURES)

    def _start(self):
        """Start the actor pool over every unfinished shard; an iterator over its output blocks (pyarrow tables)."""
        try:
            import ray
        except ImportError as error:
            raise InvalidInputError("engine='ray' needs Ray: pip install 'video-lavit[ray]'.") from error
        if not ray.is_initialized():
            # Connects to the cluster that RAY_ADDRESS names, or to the latest one started on this machine (`ray
            # start`), else starts a local one.
            ray.init(log_to_driver=False)
        num_gpus = self.num_gpus
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        if num_gpus is None:
            num_gpus = 1 if cluster_gpus >= 1 else 0
        actors = _actor_count(self.concurrency, num_gpus, cluster_gpus)
        source = self.rows.with_format("arrow")
        blocks = []
        for index in self.parts:
            start, stop = index * self.shard_size, min(len(self.rows), (index + 1) * self.shard_size)
            per_actor = -(-(stop - start) // self.concurrency)
            step = self.batch_size * -(-per_actor // self.batch_size)
            for block_start in range(start, stop, step):
                block_stop = min(stop, block_start + step)
                row_numbers = pa.array(range(block_start, block_stop), pa.int64())
                blocks.append(source[block_start:block_stop].append_column("_row", row_numbers))
        if self.worker.media_tokenizers is not None:
            # Put once in the object store and fetched by each actor; nested in a list, so that Ray passes the
            # reference itself and the actors' constructor arguments stay small.
            self.shared_tokenizers = [ray.put(self.worker.media_tokenizers)]
        context = ray.data.DataContext.get_current()
        saved = context.enable_progress_bars, context.print_on_execution_start
        if not self.progress:
            context.enable_progress_bars = context.print_on_execution_start = False
        try:
            dataset = ray.data.from_arrow(blocks)  # a dataset keeps the context of the moment it is made
        finally:
            context.enable_progress_bars, context.print_on_execution_start = saved
        mapped = dataset.map_batches(
            _RayWorker,
            fn_constructor_kwargs=dict(
                shared_tokenizers=self.shared_tokenizers,
                tokenizers=self.worker.tokenizers_path,
                video_processor=self.worker.video_processor,
                processor_options=self.worker.processor_options,
                device=self.worker.device,
                keyframe_batch_size=self.worker.keyframe_batch_size,
                motion_batch_size=self.worker.motion_batch_size,
            ),
            batch_size=self.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(blocks))),
            num_gpus=num_gpus,
        )
        return iter(mapped.iter_batches(batch_size=None, batch_format="pyarrow"))


def _actor_count(requested: int, gpus_per_actor: float, cluster_gpus: float) -> int:
    """Actors of the pool: `requested`, or as many as the cluster's GPUs hold (more would wait for ever)."""
    if gpus_per_actor <= 0:
        return requested
    fit = math.floor(cluster_gpus / gpus_per_actor + 1e-6)  # 1 // 0.2 is 4.0 in floating point
    if fit < 1:
        raise InvalidInputError(
            f"each Ray actor asks for {gpus_per_actor} GPU but the cluster has {cluster_gpus}; pass num_gpus=0 "
            "(video-lavit prepare --num-gpus 0) to prepare on CPUs, or start Ray with GPUs."
        )
    if fit < requested:
        logger.warning(
            "%d Ray actors asked for, %d fit on the cluster's %g GPUs: using %d", requested, fit, cluster_gpus, fit
        )
    return min(requested, fit)


class _RayWorker(PrepareWorker):
    """`PrepareWorker` as a Ray Data actor: its in-memory tokenizers come from the object store (moved to its
    device), and the input's row numbers (`_row`) pass through, so that the output can be put back in order."""

    def __init__(self, shared_tokenizers: list, **kwargs):
        import ray

        super().__init__(**kwargs)
        if shared_tokenizers:
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.media_tokenizers = ray.get(shared_tokenizers[0]).to(device)

    def __call__(self, batch):
        row_numbers = batch.column("_row")
        table = super().__call__(batch.drop_columns(["_row"]))
        return table.append_column("_row", row_numbers)


__all__ = [
    "MediaTokenizers",
    "PREPARED_FEATURES",
    "PrepareSummary",
    "PrepareWorker",
    "load_prepared",
    "prepare_corpus",
]
