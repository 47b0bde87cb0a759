"""Writing a video's clips to disk as they are decoded: one safetensors file and one contact sheet per video.

`tokenize_video` (behind `video-lavit tokenize`) holds at most one clip (or one motion-tokenizer batch) in memory,
however long the video: the reader's first pass tells how many clips there will be, so the safetensors header is
written first and each clip's rows go to their place in the file as soon as the clip is decoded
(`SafetensorsRowWriter`); the contact sheet keeps small tiles of at most `MAX_SHEET_ROWS` clips spread over the
video. Both files are written under temporary names beside their targets and renamed only when complete, so an
interrupted or failed video leaves nothing that looks finished, and a finished one is never rewritten unless asked
(`overwrite`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping

import numpy as np
import torch
from huggingface_hub.utils import tqdm
from safetensors import SafetensorError, safe_open

from ..errors import InvalidInputError, OutputError, VideoLaVITError
from ..files import current_umask, replace_file, write_error
from .video_io import VideoClip
from .video_processing_video_lavit import RUN_ONLY_OPTIONS, VideoLaVITVideoProcessor
from .visualization import clip_motion_summary, contact_sheet_row, join_contact_sheet_rows, motion_to_hsv_image

# Clips shown on a contact sheet at most (spread evenly over the video); the safetensors file holds every clip.
MAX_SHEET_ROWS = 32
_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class SafetensorsRowWriter:
    """A safetensors file whose tensors' shapes are known up front, filled one row (first index) at a time.

    The header goes first, the data region is pre-sized, and `write_row` puts each row at its offset, so only one
    row is in memory at a time. The file is written as `.<name>.partial-*` beside `path` and renamed to `path` by
    `commit`; `abort` (or an error) deletes it. The result is an ordinary safetensors file (tensors in the order
    given, contiguous, as `safetensors.torch.save_file` lays them out).

    Args:
        path (`str`): the file to write.
        tensors (`Mapping[str, tuple[torch.dtype, tuple[int, ...]]]`): name -> (dtype, shape) of every tensor.
        metadata (`Mapping[str, str]`): the header's `__metadata__`.
    """

    def __init__(
        self, path: str, tensors: Mapping[str, tuple[torch.dtype, tuple[int, ...]]], metadata: Mapping[str, str]
    ):
        self.path = path
        header: dict[str, object] = {"__metadata__": {str(key): str(value) for key, value in metadata.items()}}
        self._layout: dict[str, tuple[int, int, torch.dtype, tuple[int, ...]]] = {}
        offset = 0
        for name, (dtype, shape) in tensors.items():
            shape = tuple(int(size) for size in shape)
            if dtype not in _SAFETENSORS_DTYPES or not shape:
                raise InvalidInputError(f"{name}: cannot write a {dtype} tensor of shape {shape} row by row")
            row_bytes = math.prod(shape[1:]) * torch.empty((), dtype=dtype).element_size()
            size = row_bytes * shape[0]
            header[name] = {
                "dtype": _SAFETENSORS_DTYPES[dtype],
                "shape": list(shape),
                "data_offsets": [offset, offset + size],
            }
            self._layout[name] = (offset, row_bytes, dtype, shape)
            offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        self._data_start = 8 + len(encoded)
        directory, name = os.path.split(os.path.abspath(path))
        try:
            handle, self._partial = tempfile.mkstemp(prefix=f".{name}.partial-", dir=directory)
            self._file = os.fdopen(handle, "r+b")
            self._file.write(len(encoded).to_bytes(8, "little") + encoded)
            self._file.truncate(self._data_start + offset)
        except OSError as error:
            self.abort()
            raise write_error(path, error) from error

    def write_row(self, name: str, index: int, row: torch.Tensor | np.ndarray | float | int) -> None:
        """Write `row` (shape = the tensor's shape without its first dimension) at `tensor[index]`."""
        begin, row_bytes, dtype, shape = self._layout[name]
        tensor = torch.as_tensor(row).to(dtype)
        if tuple(tensor.shape) != shape[1:] or not 0 <= index < shape[0]:
            raise InvalidInputError(f"{name}[{index}]: got a row of shape {tuple(tensor.shape)}, expected {shape[1:]}")
        if dtype == torch.bfloat16:  # numpy has no bfloat16: write its bits
            tensor = tensor.view(torch.int16)
        data = tensor.detach().cpu().contiguous().numpy().tobytes()
        assert len(data) == row_bytes
        try:
            self._file.seek(self._data_start + begin + index * row_bytes)
            self._file.write(data)
        except OSError as error:
            self.abort()
            raise write_error(self.path, error) from error

    def commit(self) -> None:
        """Finish the file and move it into place."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self._partial, 0o666 & ~current_umask())  # mkstemp makes it private
            os.replace(self._partial, self.path)
        except OSError as error:
            self.abort()
            raise write_error(self.path, error) from error

    def abort(self) -> None:
        """Delete the unfinished file."""
        file = getattr(self, "_file", None)
        if file is not None and not file.closed:
            file.close()
        partial = getattr(self, "_partial", None)
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)


def check_output_folder(folder: str) -> None:
    """Create `folder` if needed and make sure files can be written in it, or raise `OutputError`."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputError(
            f"{folder}: cannot write there ({error.strerror or error}); choose a writable output folder."
        ) from error


def tokenize_motion(
    motion_tokenizer, motion_vectors: torch.Tensor, batch_size: int = 4, progress: bool | None = None, name: str = ""
) -> tuple[torch.Tensor, torch.Tensor]:
    """Motion token ids `[clips, 135]` and the motion decoded from them `[clips, 2, 24, 20, 36]` (fp32, on the CPU),
    `batch_size` clips at a time (the tokenizer's memory is that of one batch however long the video), with a
    progress bar (`progress`: None shows it from two batches on, False never)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"the motion batch size must be at least 1, got {batch_size}")
    batches = motion_vectors.split(batch_size)
    show = len(batches) > 1 if progress is None else progress
    token_ids, decoded = [], []
    for batch in tqdm(
        batches, desc=f"motion tokens {os.path.basename(name)[:30]}", unit="batch", disable=not show, leave=False
    ):
        with torch.no_grad():
            indices = motion_tokenizer.encode(batch.to(motion_tokenizer.device, motion_tokenizer.dtype)).indices
            decoded.append(motion_tokenizer.decode(indices).float().cpu())
        token_ids.append(indices.cpu())
    return torch.cat(token_ids), torch.cat(decoded)


def _labelled_sheet(rows: dict, times: dict, info, clip_frames: int, decoded: bool, num_clips: int):
    """The contact sheet with column titles, each row's clip number and times, and a legend."""
    rate = float(info.frame_rate)
    order = sorted(rows)
    labels = [
        f"clip {index}\n{times[index][0]:.1f}-{times[index][0] + times[index][1] / rate:.1f} s" for index in order
    ]
    titles = ["keyframe", "motion", "motion arrows"] + (["decoded motion"] if decoded else [])
    first = times[min(times)][0]
    last = max(start + count / rate for start, count in times.values())
    legend = [
        "motion: the clip's mean motion-vector grid; hue = direction (red right, yellow-green down, cyan left, "
        "violet up), brightness = speed" + ("; decoded: the same from the clip's motion codes" if decoded else ""),
        f"{num_clips} clip{'s' if num_clips != 1 else ''} of {clip_frames} frames at {info.frame_rate} fps cover "
        f"{first:.1f}-{last:.1f} s of {info.duration:.1f} s"
        + (f" ({len(order)} shown)" if len(order) < num_clips else ""),
        "clips start at every second I-frame (GOP 12) from the second one, so the first GOP and a tail shorter "
        "than a clip are not covered",
    ]
    return join_contact_sheet_rows([rows[index] for index in order], titles=titles, labels=labels, legend=legend)


def _sheet_rows(num_clips: int) -> set[int]:
    if num_clips <= MAX_SHEET_ROWS:
        return set(range(num_clips))
    return {int(index) for index in np.linspace(0, num_clips - 1, MAX_SHEET_ROWS).round()}


def _settings(processor: VideoLaVITVideoProcessor, motion_tokenizer, options: dict) -> str:
    """Everything that decides a video's outputs, as JSON: the reader's effective arguments, the processor's
    configuration and the motion tokenizer (its folder and configuration)."""
    reader = processor._reader_arguments(processor._options(options))
    settings = {"reader": reader, "processor": json.loads(processor.to_json_string())}
    for name in RUN_ONLY_OPTIONS:  # how a video is read, not what it gives
        reader.pop(name, None)
        settings["processor"].pop(name, None)
    if motion_tokenizer is not None:
        name = getattr(motion_tokenizer, "name_or_path", "") or ""
        settings["motion_tokenizer"] = {
            "path": os.path.realpath(name) if name and os.path.exists(name) else name,
            "config": json.loads(motion_tokenizer.config.to_json_string(use_diff=False)),
        }
    return json.dumps(settings, sort_keys=True, default=str)


# Unfinished files untouched for this long belong to a run that was killed (a running one writes every clip).
_STALE_PARTIAL_SECONDS = 15 * 60


def _remove_partial_files(folder: str, stem: str) -> None:
    now = time.time()
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if name.startswith((f".{stem}.safetensors.partial-", f".{stem}.png.partial-")):
            path = os.path.join(folder, name)
            try:
                if now - os.path.getmtime(path) > _STALE_PARTIAL_SECONDS:
                    os.unlink(path)
            except OSError:
                pass


def recorded_metadata(path: str) -> dict[str, str]:
    """The metadata of a safetensors file written by `tokenize_video` (empty if it cannot be read)."""
    try:
        with safe_open(path, "pt") as handle:
            return dict(handle.metadata() or {})
    except (OSError, SafetensorError):
        return {}


def tokenize_video(
    processor: VideoLaVITVideoProcessor,
    video: str,
    output_dir: str,
    stem: str,
    motion_tokenizer=None,
    motion_batch_size: int = 4,
    overwrite: bool = False,
    **options,
) -> dict:
    """Process one video; write `<stem>.safetensors` and `<stem>.png` into `output_dir`; return a summary row.

    The safetensors file holds `keyframe_pixel_values`, `motion_vectors`, `clip_start_frames`, `clip_start_times`
    and `clip_num_valid_frames` (and `motion_token_ids` with a `motion_tokenizer`, whose decoded motion the contact
    sheet then shows beside the original; clips go through it `motion_batch_size` at a time), with the source, frame
    rate, sizes, I-frames and everything that decided the outputs (processor configuration, the reader's options,
    the motion tokenizer) in its metadata. Memory stays that of one clip (or one batch).

    A video whose files already exist, made with the same settings, is skipped (`"skipped": True` in the row) unless
    `overwrite`; files of another video with the same name, or made with other settings, are never replaced
    silently. Unfinished files of a killed run are removed.

    Raises:
        `VideoLaVITError` subclasses: the video cannot be read, or `OutputError` when the files cannot be written.
    """
    started = time.perf_counter()
    tensor_path = os.path.join(output_dir, f"{stem}.safetensors")
    sheet_path = os.path.join(output_dir, f"{stem}.png")
    source = os.fspath(video)
    source_path = os.path.realpath(source)
    settings = _settings(processor, motion_tokenizer, options)
    for target in (tensor_path, sheet_path):
        if os.path.realpath(target) == source_path:
            raise OutputError(
                f"{target}: is the video being read; its output would overwrite it. Choose another output folder."
            )
    _remove_partial_files(output_dir, stem)  # left by a run that was killed
    if not overwrite and os.path.exists(sheet_path) and not os.path.exists(tensor_path):
        raise OutputError(
            f"{sheet_path}: already exists and was not written for {source} (there is no {stem}.safetensors beside "
            "it); choose another output folder, or pass --overwrite (overwrite=True) to replace it."
        )
    if os.path.exists(tensor_path) and not overwrite:
        recorded = recorded_metadata(tensor_path)
        if recorded.get("source_path", recorded.get("source")) not in (source_path, source):
            raise OutputError(
                f"{tensor_path}: already exists and holds the clips of {recorded.get('source') or 'another video'}, "
                f"not of {source}; choose another output folder, or pass --overwrite (overwrite=True) to replace it."
            )
        if recorded.get("settings") != settings:
            raise OutputError(
                f"{tensor_path}: already holds the clips of {source}, made with other settings (processor, reader "
                "options or motion tokenizer); pass --overwrite (overwrite=True) to redo it, or choose another output "
                "folder."
            )
        if os.path.exists(sheet_path):  # the tensors are renamed into place first: both exist only when finished
            return {"video": source, "skipped": True, "tensors": tensor_path, "sheet": sheet_path}
    if isinstance(motion_batch_size, bool) or not isinstance(motion_batch_size, int) or motion_batch_size < 1:
        raise InvalidInputError(f"the motion batch size must be at least 1, got {motion_batch_size}")
    with processor.clip_reader(video, **options) as reader:
        info = reader.info
        num_clips = len(info.clip_starts)
        if num_clips == 0:
            raise VideoLaVITError(f"{video}: no clip could be cut from the video.")
        size = processor.size
        grid = processor.motion_grid_size
        tensors = {
            "keyframe_pixel_values": (torch.float32, (num_clips, 3, size["height"], size["width"])),
            "motion_vectors": (torch.float32, (num_clips, 2, reader.num_frames, grid["height"], grid["width"])),
            "clip_start_frames": (torch.int64, (num_clips,)),
            "clip_start_times": (torch.float64, (num_clips,)),
            "clip_num_valid_frames": (torch.int64, (num_clips,)),
        }
        if motion_tokenizer is not None:
            per_clip = motion_tokenizer.config.num_tokens_per_clip
            tensors["motion_token_ids"] = (torch.int64, (num_clips, per_clip))
        metadata = {
            "source": source,
            "source_codec": info.source_codec,
            "width": str(info.width),
            "height": str(info.height),
            "frame_rate": str(info.frame_rate),
            "num_frames": str(info.num_frames),
            "intra_frames": json.dumps(info.intra_frames),
            "processor_config": processor.to_json_string(),
            "source_path": source_path,
            "settings": settings,
        }
        writer = SafetensorsRowWriter(tensor_path, tensors, metadata)
        try:
            sheet_rows = _sheet_rows(num_clips)
            rows: dict[int, list] = {}
            times: dict[int, tuple[float, int]] = {}
            pending: list[tuple[int, VideoClip]] = []

            def flush() -> None:
                motions = torch.stack([clip.motion_vectors for _, clip in pending])
                token_ids, decoded = tokenize_motion(motion_tokenizer, motions, len(pending), False, video)
                for (index, clip), ids, clip_decoded in zip(pending, token_ids, decoded):
                    writer.write_row("motion_token_ids", index, ids)
                    if index in sheet_rows:
                        scale = float(np.abs(clip_motion_summary(clip.motion_vectors)).max()) or None
                        extra = [motion_to_hsv_image(clip_motion_summary(clip_decoded), max_magnitude=scale)]
                        rows[index] = contact_sheet_row(clip.keyframe, clip.motion_vectors, extra)
                pending.clear()

            show = options.get("progress")
            show = num_clips > 8 if show is None else show
            bar = tqdm(total=num_clips, unit="clip", desc=os.path.basename(source)[:40], disable=not show, leave=False)
            with bar:
                for index, clip in enumerate(reader):
                    writer.write_row("keyframe_pixel_values", index, processor.preprocess_keyframe(clip.keyframe))
                    writer.write_row("motion_vectors", index, clip.motion_vectors)
                    writer.write_row("clip_start_frames", index, clip.start_frame)
                    writer.write_row("clip_start_times", index, clip.start_time)
                    writer.write_row("clip_num_valid_frames", index, clip.num_valid_frames)
                    times[index] = (clip.start_time, clip.num_valid_frames)
                    if motion_tokenizer is not None:
                        # Only the batch's clips are held; keyframes of clips off the sheet are not kept.
                        kept = clip if index in sheet_rows else VideoClip(None, clip.motion_vectors, 0, 0.0, 0)
                        pending.append((index, kept))
                        if len(pending) == motion_batch_size:
                            flush()
                    elif index in sheet_rows:
                        rows[index] = contact_sheet_row(clip.keyframe, clip.motion_vectors)
                    bar.update(1)
                if pending:
                    flush()
            sheet = _labelled_sheet(rows, times, info, reader.num_frames, motion_tokenizer is not None, num_clips)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        with replace_file(sheet_path) as file:
            sheet.save(file, format="PNG")
    return {
        "video": source,
        "skipped": False,
        "clips": num_clips,
        "seconds": info.duration,
        "time": time.perf_counter() - started,
        "tensors": tensor_path,
        "sheet": sheet_path,
    }


__all__ = ["MAX_SHEET_ROWS", "SafetensorsRowWriter", "check_output_folder", "tokenize_motion", "tokenize_video"]
