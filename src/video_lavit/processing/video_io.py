"""Reading videos into Video-LaVIT clips with PyAV: keyframes plus motion-vector grids.

Implements SPEC section 1 (paper section 3.1). The reference shells out to an ffmpeg binary that re-encodes the
whole video to an MPEG-4 Part 2 file at 6 fps and 8 Mb/s, decodes that file completely with motion-vector export,
keeps every RGB frame and a dense float64 (H, W, 2) vector map per frame, and only then picks clips.

What we do instead, with the same numbers:
1. One streaming pass re-encodes in process (PyAV's FFmpeg: decoder -> `fps` filter -> `mpeg4` encoder, settings as
   the reference's ffmpeg command line) and spools the encoded packets to an anonymous temporary file. Only the
   packets' offsets and I-frame flags stay in memory, so memory does not grow with the video's length.
2. The clip starts are chosen from the I-frame flags (`clip_sampling.select_clip_starts`).
3. Only the selected clips are decoded, each from its own I-frame (MPEG-4 without B-frames decodes from any I-frame
   bit-identically), with motion-vector export; each frame's vectors are pooled straight into the macroblock grid.

Deliberate differences from the reference:
- ffmpeg's command line gives the `mpeg4` encoder one slice per thread and picks the thread count from the
  machine's cores (min(cores, macroblock rows) + 1, at most 16), so the reference's motion vectors depend on the
  machine it runs on. We make the count a setting, `encoder_threads`, defaulting to 16: what ffmpeg picks on any
  machine with 15 or more cores.
- Error concealment is off when decoding the clips. FFmpeg's concealment of the macroblocks it (wrongly) thinks
  damaged in slice-threaded MPEG-4 output reads uninitialised memory, which makes the reference's vectors change
  from run to run; without it they are deterministic (and equal to our stored reference outputs).
- `reencode=False` (our addition) reads the stream as it is: clips start at the container's keyframes, and the
  vectors are whatever the codec exported (exact for MPEG-4 streams with GOP 12 and no B-frames at 6 fps,
  approximate otherwise). Codecs that export vectors: MPEG-4 Part 2, H.264, MPEG-1/2 video and H.263. HEVC, VP8, VP9,
  AV1 and intra-only codecs (MJPEG, ...) export none: use the default re-encoding for those.

Damaged input. FFmpeg conceals most damage (the reference's ffmpeg command line would go on and re-encode the
concealed frames), which would give silently wrong clips, so every sign of damage FFmpeg reports raises a
`VideoDecodeError` naming the file, where the damage is and what to do:
- MP4/MOV (ISO BMFF) files: before anything is decoded, the top-level boxes are walked; a `moov`, `mdat` or `moof`
  box that runs past the end of the file, or a missing `moov`, means the file is truncated.
- packets the demuxer flags as corrupt (a partial last packet of a truncated file, MPEG-TS continuity errors, ...);
- errors the decoder returns; for H.264 and HEVC also frames it flags as concealed, once the stream has produced a
  clean frame (frames before the first clean one are the normal start of a stream cut mid-GOP). FFmpeg's MPEG-4
  decoder flags valid slice-threaded frames too, so for the other codecs the flag is not used;
- AVI files whose index lists frames the demuxer never returned (it skips what follows damaged data);
- a video track whose packets stop more than a second short of the duration its header declares (Matroska/WebM
  `DURATION` tags, which FFmpeg and mkvmerge write; AVI frame counts): the end was cut off, or the demuxer lost
  the rest of the file after damage in the middle;
- timestamps that jump far beyond the video's length, or that spread the frames so thinly (a damaged frame rate in
  a header) that the `fps` filter would repeat each one thousands of times: the re-encoding would take hours.
Damage that leaves the bitstream decodable without an error (e.g. a few garbled bytes inside a CABAC-coded H.264
slice or in an MPEG-4 frame, a cut at a packet boundary of an MPEG-TS file, the last second of a Matroska file) cannot
be told from a valid stream and is not detected.

Other inputs that cannot be used raise `UnsupportedVideoError`: no video stream (or only cover art), a still image,
a video too short to give one frame at `fps`, a codec FFmpeg cannot decode, and a frame size that changes
mid-stream. Of several video streams, the one ffmpeg's command line would pick is read: the largest, default ones
first, never an attached picture.
"""

from __future__ import annotations

import gc
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np
import torch
from huggingface_hub.utils import tqdm

from ..errors import UnsupportedVideoError, VideoDecodeError
from .clip_sampling import select_clip_starts
from .motion_vectors import MOTION_INPUT_SCALE, MOTION_VECTOR_STD, clip_motion_grid, pool_frame_motion_vectors

VideoInput = str | os.PathLike | bytes | bytearray | BinaryIO | dict
"""A path, the file's bytes, a binary file object, or a `datasets.Video(decode=False)` row (`{"path", "bytes"}`)."""

# Codecs whose FFmpeg decoders export motion vectors (`flags2=+export_mvs`).
MOTION_VECTOR_CODECS = frozenset({"mpeg4", "h264", "mpeg1video", "mpeg2video", "h263", "h263p"})
# Source videos longer than this (seconds) show a progress bar unless asked otherwise.
_PROGRESS_MIN_SECONDS = 120.0


@dataclass
class VideoClip:
    """One clip of a video: its keyframe and the motion of its frames.

    Attributes:
        keyframe (`np.ndarray`): uint8 `[H, W, 3]` RGB, the decoded first frame of the clip at full resolution.
        motion_vectors (`torch.Tensor`): float32 `[2, num_frames, grid_h, grid_w]` tokenizer input.
        start_frame (`int`): index of the first frame in the (re-encoded) stream.
        start_time (`float`): seconds from the start of the video.
        num_valid_frames (`int`): frames of the video in this clip; the rest, if any, is zero padding.
    """

    keyframe: np.ndarray
    motion_vectors: torch.Tensor
    start_frame: int
    start_time: float
    num_valid_frames: int


@dataclass
class VideoStreamInfo:
    """What the first pass learnt about a video.

    Attributes:
        name (`str`): the file name (or a description of an in-memory input) used in messages.
        source_codec (`str`): codec of the source video stream.
        width (`int`), height (`int`): size of the frames that are tokenized (after rotation).
        frame_rate (`Fraction`): frame rate of the stream the clips are cut from.
        num_frames (`int`): frames in that stream.
        intra_frames (`list[int]`): indices of its I-frames.
        clip_starts (`list[int]`): the selected clip start frames.
    """

    name: str
    source_codec: str
    width: int
    height: int
    frame_rate: Fraction
    num_frames: int
    intra_frames: list[int] = field(default_factory=list)
    clip_starts: list[int] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds of video in the tokenized stream."""
        return self.num_frames / float(self.frame_rate)


def describe_video_input(video: VideoInput) -> str:
    """A short name for `video` to use in messages."""
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    if isinstance(video, dict):
        return str(video.get("path") or "<video bytes>")
    if isinstance(video, (bytes, bytearray)):
        return f"<{len(video)} bytes of video>"
    return str(getattr(video, "name", None) or f"<{type(video).__name__}>")


def _open_container(video: VideoInput, name: str) -> av.container.InputContainer:
    if isinstance(video, dict):
        data, path = video.get("bytes"), video.get("path")
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise VideoDecodeError(
                f"{name}: the video row's 'bytes' is a {type(data).__name__}, not bytes; pass the file's bytes."
            )
        if data:
            video = data
        elif path:
            video = path
        else:
            raise VideoDecodeError(f"{name}: the video row has neither 'bytes' nor 'path'; pass a file or its bytes.")
    if isinstance(video, (str, os.PathLike)):
        path = os.fspath(video)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path:
            raise VideoDecodeError("an empty path was given; pass the path of a video file.")
        if not os.path.exists(path):
            raise VideoDecodeError(f"{path}: no such file; check the path.")
        if os.path.isdir(path):
            raise VideoDecodeError(f"{path}: is a directory; pass a video file.")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(f"{path}: the file is empty; re-download or re-export the video.")
        try:
            with open(path, "rb") as file:
                _check_iso_bmff_boxes(file, name)
        except OSError as error:
            raise VideoDecodeError(f"{path}: could not be read ({error}); check the file's permissions.") from error
        source = path
    elif isinstance(video, (bytes, bytearray)):
        if len(video) == 0:
            raise VideoDecodeError(f"{name}: no bytes were given; pass a non-empty video.")
        source = io.BytesIO(video)
        _check_iso_bmff_boxes(source, name)
    elif isinstance(video, io.TextIOBase):
        raise VideoDecodeError(f"{name}: the file object is open in text mode; open the video with open(path, 'rb').")
    elif hasattr(video, "read"):
        source = video
        _check_iso_bmff_boxes(source, name)
    else:
        raise VideoDecodeError(
            f"{name}: cannot read a {type(video).__name__} as a video; pass a path, bytes or a binary file object."
        )
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except av.FFmpegError as error:
        raise VideoDecodeError(
            f"{name}: not a readable video ({_reason(error)}); check that it is a video file."
        ) from error
    except (OSError, ValueError, TypeError) as error:
        raise VideoDecodeError(f"{name}: could not be opened ({error}); check that it is a video file.") from error


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


# Box types that can open an ISO BMFF (MP4, MOV, M4V, 3GP) file, and what the boxes whose loss matters hold.
_ISO_BMFF_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_ISO_BMFF_ESSENTIAL_BOXES = {
    b"moov": "the index of the frames",
    b"mdat": "the encoded frames",
    b"moof": "a fragment's index",
}


def _check_iso_bmff_boxes(file: BinaryIO, name: str) -> None:
    """Raise `VideoDecodeError` if `file` is an MP4/MOV whose top-level boxes show it is truncated.

    FFmpeg reads a truncated MP4 whose index (`moov`) is at the front without an error and silently stops early, so
    the size each top-level box declares is checked against the size of the file. Only box headers are read, and
    the file position is restored. Files that are not ISO BMFF, or that cannot seek, are left to FFmpeg.
    """
    try:
        if not file.seekable():
            return
        start = file.tell()
    except (AttributeError, OSError, ValueError):
        return
    try:
        problem = _iso_bmff_problem(file)
    except (OSError, ValueError):
        problem = None
    finally:
        try:
            file.seek(start)
        except (OSError, ValueError):
            pass
    if problem is not None:
        raise VideoDecodeError(f"{name}: {problem}")


def _iso_bmff_problem(file: BinaryIO) -> str | None:
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    head = file.read(8)
    if not isinstance(head, bytes) or len(head) < 8 or head[4:8] not in _ISO_BMFF_FIRST_BOXES:
        return None
    position, seen = 0, set()
    while position + 8 <= size:
        file.seek(position)
        header = file.read(16)
        box_size, box_type, header_size = int.from_bytes(header[:4], "big"), header[4:8], 8
        if box_size == 1 and len(header) == 16:
            box_size, header_size = int.from_bytes(header[8:16], "big"), 16
        elif box_size == 0:  # the last box, up to the end of the file
            box_size = size - position
        if box_size < header_size or not all(32 <= byte < 127 or byte == 0xA9 for byte in box_type):
            return None  # not a box structure this walk understands: FFmpeg will judge
        seen.add(box_type)
        end = position + box_size
        if end > size:
            if box_type not in _ISO_BMFF_ESSENTIAL_BOXES:
                return None
            return (
                f"the file is truncated: its '{box_type.decode('latin-1')}' box "
                f"({_ISO_BMFF_ESSENTIAL_BOXES[box_type]}) starts at byte {position} and declares {box_size} bytes, "
                f"but the file ends at byte {size} ({end - size} bytes missing). The download or recording was "
                "interrupted; re-download or re-export the video."
            )
        position = end
    if b"moov" in seen:
        return None
    found = ", ".join(sorted(box.decode("latin-1") for box in seen))
    return (
        f"the MP4/MOV file has no 'moov' box (the index of its frames; boxes found: {found}), so its frames cannot "
        "be located. The recording or download was probably interrupted before the index was written (or this is "
        "a media segment without its initialisation segment); re-download or re-export the video."
    )


_ATTACHED_PIC = av.stream.Disposition.attached_pic
_DEFAULT_DISPOSITION = av.stream.Disposition.default


def _video_stream(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams}) or ["no streams"]
        raise UnsupportedVideoError(f"{name}: has no video stream (found: {', '.join(kinds)}); pass a video file.")
    videos = [stream for stream in container.streams.video if not stream.disposition & _ATTACHED_PIC]
    if not videos:
        raise UnsupportedVideoError(
            f"{name}: has no video stream, only cover art (an attached picture); pass a video file."
        )

    def score(stream):  # ffmpeg's command line picks the largest video stream, default-flagged ones first
        width, height = (stream.codec_context.width, stream.codec_context.height) if stream.codec_context else (0, 0)
        return width * height + 5_000_000 * bool(stream.disposition & _DEFAULT_DISPOSITION)

    stream = max(videos, key=score)  # the first of equals, as ffmpeg
    if stream.codec_context is None:
        raise UnsupportedVideoError(
            f"{name}: FFmpeg has no decoder for its video stream: the file is damaged or uses a codec this build of "
            "FFmpeg cannot decode; re-encode it to a common codec (e.g. H.264) first."
        )
    return stream


def _frame_shape(frame: av.VideoFrame) -> tuple[int, int, str]:
    """Size and memory layout of a frame (yuvj formats are the yuv ones with full range: same layout)."""
    return frame.width, frame.height, frame.format.name.replace("yuvj", "yuv")


def _rotation_filters(rotation: int) -> list[tuple[str, str | None]]:
    """The filters ffmpeg's command line inserts to apply a display rotation (counter-clockwise degrees)."""
    clockwise = (-rotation) % 360
    if abs(clockwise - 90) < 1:
        return [("transpose", "clock")]
    if abs(clockwise - 180) < 1:
        return [("hflip", None), ("vflip", None)]
    if abs(clockwise - 270) < 1:
        return [("transpose", "cclock")]
    return []


# A video track may stop this many seconds short of the duration its header declares before it counts as truncated
# (valid VFR AVI files end a few empty "dropped frame" chunks short of their declared frame count).
_TRUNCATION_TOLERANCE_SECONDS = 1.0
# Decoders whose "corrupt frame" flag means damage. FFmpeg's MPEG-4 Part 2 decoder (and the other codecs built on
# its error resilience) flags valid frames of slice-threaded MPEG-4 as damaged, so there the flag is ignored and only
# decoder errors count.
_CORRUPT_FLAG_CODECS = frozenset({"h264", "hevc"})
# Consecutive frames further apart than this many seconds (or than twice the container's declared duration, if that
# is longer) mean a damaged timestamp: the `fps` filter would fill the gap with hours of repeated frames.
_MAX_FRAME_GAP_SECONDS = 600.0
# A damaged frame rate in a header (e.g. an AVI whose frames each "last" days) makes the `fps` filter repeat every
# frame millions of times: the re-encoding may make at most this many frames per decoded source frame, beyond the
# first four hours' worth of frames.
_MAX_OUTPUT_FRAMES_PER_SOURCE_FRAME = 1000
_FREE_OUTPUT_SECONDS = 4 * 3600
_ADVICE = "Re-download or re-export the video (or re-encode what is readable with ffmpeg first)."


def _parse_duration_tag(value: object) -> float | None:
    """Seconds in a Matroska `DURATION` tag (`HH:MM:SS.fffffffff`), or None."""
    try:
        hours, minutes, seconds = str(value).strip().split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


class _DamageCheck:
    """Watches one stream's packets and frames for damage that FFmpeg reports but conceals (see the module notes).

    Only reads flags and timestamps, so the frames that come out are exactly those of `container.decode(stream)`.
    """

    def __init__(self, name: str, stream: av.video.stream.VideoStream, output_fps: int | None = None):
        self.name = name
        self.stream = stream
        self.output_fps = output_fps
        self.first_frame_time: float | None = None
        self.trust_corrupt_flag = stream.codec_context.name in _CORRUPT_FLAG_CODECS
        self.packets = 0
        self.data_packets = 0
        # Byte positions of the packets read, to find the first one an AVI's index lists but the demuxer lost.
        self.positions: set[int | None] | None = set() if stream.container.format.name == "avi" else None
        self.frames = 0
        self.clean_frame_seen = False
        self.position: int | None = None
        self.time: float | None = None
        self.end_time: float | None = None
        self.frame_time: float | None = None
        declared = stream.container.duration / av.time_base if stream.container.duration else 0.0
        self.max_frame_gap = max(_MAX_FRAME_GAP_SECONDS, 2 * declared)

    def demux(self, container: av.container.InputContainer) -> Iterator[av.Packet]:
        """`container.demux(stream)`, checking every packet (the final flush packet included, unchecked)."""
        for packet in container.demux(self.stream):
            if packet.size or packet.pts is not None or packet.dts is not None:
                self._check_packet(packet)
            yield packet

    def decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        """`packet.decode()`, turning decoder errors and concealed frames into `VideoDecodeError`."""
        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            raise VideoDecodeError(
                f"{self.name}: decoding failed {self.where()} ({_reason(error)}); the file is damaged. {_ADVICE}"
            ) from error
        for frame in frames:
            self.frames += 1
            if not (frame.is_corrupt and self.trust_corrupt_flag):
                self.clean_frame_seen = True
            elif self.clean_frame_seen:  # corrupt frames before the first clean one: a stream cut mid-GOP
                when = f" at {frame.time:.2f} s" if frame.time is not None else ""
                raise VideoDecodeError(
                    f"{self.name}: video frame {self.frames - 1}{when} is damaged (the decoder concealed errors in "
                    f"it, so its pixels and motion would be wrong; last packet read {self.where()}). {_ADVICE}"
                )
            if frame.pts is not None and frame.time_base:
                time = float(frame.pts * frame.time_base)
                if self.frame_time is not None and time - self.frame_time > self.max_frame_gap:
                    raise VideoDecodeError(
                        f"{self.name}: the timestamps jump from {self.frame_time:.2f} s to {time:.2f} s between video "
                        f"frames {self.frames - 2} and {self.frames - 1} ({self.where()}), far beyond the length of "
                        "the video: a timestamp is damaged. Re-download the video, or re-encode it with ffmpeg first "
                        "(its command line corrects MPEG-TS/PS timestamp discontinuities)."
                    )
                self.frame_time = time
                if self.first_frame_time is None:
                    self.first_frame_time = time
                self._check_output_budget(time)
        return frames

    def _check_output_budget(self, time: float) -> None:
        """Refuse timestamps that would make the `fps` filter repeat frames for days (see the constants above)."""
        if not self.output_fps:
            return
        output_frames = (time - self.first_frame_time) * self.output_fps
        budget = max(_FREE_OUTPUT_SECONDS * self.output_fps, _MAX_OUTPUT_FRAMES_PER_SOURCE_FRAME * self.frames)
        if output_frames > budget:
            raise VideoDecodeError(
                f"{self.name}: its timestamps spread {self.frames} frames over {time - self.first_frame_time:.0f} s "
                f"(frame {self.frames - 1} is at {time:.0f} s, {self.where()}), which would repeat each frame about "
                f"{output_frames / self.frames:.0f} times at {self.output_fps} fps: the frame rate or a timestamp in "
                "the file is damaged. Re-download the video, or re-encode it with ffmpeg at a fixed frame rate first "
                "(e.g. ffmpeg -i IN -r 25 -c:v libx264 OUT.mp4)."
            )

    def _check_packet(self, packet: av.Packet) -> None:
        self.packets += 1
        self.data_packets += packet.size > 0
        self.position = packet.pos if packet.pos is not None and packet.pos >= 0 else None
        if self.positions is not None:
            self.positions.add(self.position)
        timestamp = packet.pts if packet.pts is not None else packet.dts
        time_base = packet.time_base or self.stream.time_base
        if timestamp is not None and time_base:
            self.time = float(timestamp * time_base)
            end = float((timestamp + max(packet.duration or 0, 0)) * time_base)
            self.end_time = end if self.end_time is None else max(self.end_time, end)
        if packet.is_corrupt:
            raise VideoDecodeError(
                f"{self.name}: video packet {self.packets - 1} {self.where()} is incomplete or damaged (the demuxer "
                f"flagged it as corrupt; a truncated file ends like this). {_ADVICE}"
            )

    def where(self) -> str:
        """Where the last packet read lies, for messages."""
        parts = [f"byte {self.position}"] if self.position is not None else []
        if self.time is not None:
            parts.append(f"{self.time:.2f} s")
        return f"near {', '.join(parts)}" if parts else "at the start of the stream"

    def declared_duration(self) -> float | None:
        """Seconds of video the header declares where that is reliable: Matroska's `DURATION` tag, AVI's length."""
        stream = self.stream
        metadata = getattr(stream, "metadata", None) or {}
        tag = next((value for key, value in metadata.items() if key.upper() == "DURATION"), None)
        if tag is not None:
            return _parse_duration_tag(tag)
        if stream.container.format.name == "avi" and stream.frames and stream.time_base:
            return float(stream.frames * stream.time_base)  # AVI: frames counted in units of the time base
        return None

    def finish(self) -> None:
        """After the last packet: packets the file's index lists but the demuxer never returned were lost to damage,
        and a track whose packets stop well short of its declared duration lost its end."""
        if self.stream.container.format.name == "avi":
            # An AVI's idx1 lists every non-empty chunk; after damage the demuxer resynchronises and skips some.
            indexed = [entry for entry in self.stream.index_entries if entry.size > 0]
            if len(indexed) > 1 and self.data_packets < len(indexed):
                # An index entry points at the chunk's 8-byte header, a packet at its payload.
                read = self.positions
                lost = next((entry for entry in indexed if entry.pos not in read and entry.pos + 8 not in read), None)
                where = f"; the first lost one is at byte {lost.pos}" if lost is not None else ""
                raise VideoDecodeError(
                    f"{self.name}: the file is damaged: its index lists {len(indexed)} video frames, but only "
                    f"{self.data_packets} could be read (the others are lost in damaged data{where}). {_ADVICE}"
                )
        declared = self.declared_duration()
        if declared is None or self.end_time is None:
            return
        if declared - self.end_time > _TRUNCATION_TOLERANCE_SECONDS:
            raise VideoDecodeError(
                f"{self.name}: the file is truncated or damaged: its header declares {declared:.2f} s of video, but "
                f"its packets stop at {self.end_time:.2f} s ({self.where()}); the rest cannot be read. Re-download "
                "or re-export the video."
            )


class _PacketSpool:
    """Encoded packets of one stream in an anonymous temporary file, with their offsets and I-frame flags."""

    def __init__(self, codec_name: str, extradata: bytes | None = None, width: int = 0, height: int = 0):
        self.codec_name = codec_name
        self.extradata = extradata
        self.width = width
        self.height = height
        self.file = tempfile.TemporaryFile()
        self.offsets: list[int] = []
        self.sizes: list[int] = []
        self.intra_frames: list[int] = []
        self._end = 0

    def append(self, packet: av.Packet) -> None:
        data = bytes(packet)
        if not data:
            return
        if packet.is_keyframe:
            self.intra_frames.append(len(self.offsets))
        self.file.write(data)
        self.offsets.append(self._end)
        self.sizes.append(len(data))
        self._end += len(data)

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, index: int) -> bytes:
        self.file.seek(self.offsets[index])
        return self.file.read(self.sizes[index])

    def close(self) -> None:
        self.file.close()


class VideoClipReader:
    """Turns one video into Video-LaVIT clips, streaming, with bounded memory.

    The first pass (re-encoding, or copying the packets with `reencode=False`) runs when the reader is created, so
    `info` tells the frame count and the selected clips before any clip is decoded; iterating decodes the clips one
    by one. Use it as a context manager, or call `close()`, to free the temporary file at once.

    Args:
        video (`VideoInput`): a path, bytes, a binary file object or a `{"path", "bytes"}` dict.
        reencode (`bool`): re-encode to MPEG-4 at `fps` first, as the reference does (default), or read as it is.
        fps (`int`): frame rate of the re-encoded stream.
        num_frames (`int`): frames per clip.
        max_clips (`int` or `None`): most clips per video; `None` keeps every clip the selection rule gives.
        grid_size (`tuple[int, int]`): (height, width) of the motion grid.
        bit_rate (`int`): bit rate of the re-encoding, bits per second.
        encoder_threads (`int`): slices of the MPEG-4 encoder (see the module docstring).
        motion_std (`tuple[float, float]`): dataset std of motion in frame-size units.
        motion_scale (`float`): the std is divided by this.
        progress (`bool` or `None`): show a progress bar over the source frames; `None` shows one for videos longer
            than two minutes. `huggingface_hub.utils.disable_progress_bars()` silences it globally.
    """

    def __init__(
        self,
        video: VideoInput,
        *,
        reencode: bool = True,
        fps: int = 6,
        num_frames: int = 24,
        max_clips: int | None = 16,
        grid_size: tuple[int, int] = (20, 36),
        bit_rate: int = 8_000_000,
        encoder_threads: int = 16,
        motion_std: tuple[float, float] = MOTION_VECTOR_STD,
        motion_scale: float = MOTION_INPUT_SCALE,
        progress: bool | None = None,
    ):
        if num_frames < 2:
            raise ValueError(f"num_frames must be at least 2, got {num_frames}")
        self.name = describe_video_input(video)
        self.num_frames = num_frames
        self.grid_size = tuple(grid_size)
        self.motion_std = tuple(motion_std)
        self.motion_scale = motion_scale
        self._spool: _PacketSpool | None = None

        container = _open_container(video, self.name)
        try:
            stream = _video_stream(container, self.name)
            if reencode:
                self._spool, frame_rate = self._transcode(container, stream, fps, bit_rate, encoder_threads, progress)
            else:
                self._spool, frame_rate = self._copy_packets(container, stream, progress)
            source_codec = stream.codec_context.name
        except av.FFmpegError as error:
            self.close()
            raise VideoDecodeError(
                f"{self.name}: reading the video failed ({_reason(error)}); the file is damaged or not a supported "
                "video."
            ) from error
        except BaseException:
            self.close()
            raise
        finally:
            container.close()

        if len(self._spool) == 0:
            self.close()
            raise VideoDecodeError(f"{self.name}: no video frame could be decoded; the file is empty or damaged.")
        if not self._spool.intra_frames:
            self.close()
            raise VideoDecodeError(f"{self.name}: the video stream has no keyframe, so no clip can start.")
        clip_starts = select_clip_starts(
            self._spool.intra_frames, len(self._spool), num_frames=num_frames, max_clips=max_clips
        )
        self.info = VideoStreamInfo(
            name=self.name,
            source_codec=source_codec,
            width=self._spool.width,
            height=self._spool.height,
            frame_rate=frame_rate,
            num_frames=len(self._spool),
            intra_frames=list(self._spool.intra_frames),
            clip_starts=clip_starts,
        )

    # ----------------------------------------------------------------------------------------------- first pass
    def _progress_bar(self, stream, progress: bool | None):
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if duration is None and stream.container.duration:
            duration = stream.container.duration / av.time_base
        total = stream.frames or (
            int(duration * float(stream.average_rate)) if duration and stream.average_rate else None
        )
        if progress is None:
            progress = duration is not None and duration > _PROGRESS_MIN_SECONDS
        return tqdm(
            total=total, unit="frame", desc=os.path.basename(self.name)[:40], disable=not progress, leave=False
        )

    def _transcode(self, container, stream, fps, bit_rate, encoder_threads, progress):
        stream.thread_type = "AUTO"
        # ffmpeg's command line shifts every timestamp by the file's start time before filtering.
        start_offset = 0
        if container.start_time is not None and stream.time_base:
            start_offset = int(round(container.start_time / av.time_base / stream.time_base))
        spool = None
        encoder = None
        graph = None
        frame_rate = Fraction(fps)
        next_pts = None
        step = int(round(1 / (float(stream.average_rate or 25) * stream.time_base))) if stream.time_base else 1
        encoded = 0
        decoded = 0
        first_shape = None

        def encode(frame):
            nonlocal encoder, spool, encoded
            if encoder is None:
                encoder = av.CodecContext.create("mpeg4", "w")
                encoder.width, encoder.height = frame.width, frame.height
                encoder.pix_fmt = "yuv420p"
                encoder.bit_rate = bit_rate
                encoder.time_base = 1 / frame_rate
                encoder.framerate = frame_rate
                encoder.thread_type = "SLICE"
                encoder.thread_count = encoder_threads
                spool = _PacketSpool("mpeg4", width=frame.width, height=frame.height)
            packets = encoder.encode(frame)
            for packet in packets:
                spool.append(packet)

        check = _DamageCheck(self.name, stream, output_fps=fps)
        with self._progress_bar(stream, progress) as bar:
            for source_packet in check.demux(container):
                for frame in check.decode(source_packet):
                    bar.update(1)
                    if graph is None:
                        graph = self._filter_graph(frame, stream, fps)
                        first_shape = _frame_shape(frame)
                    elif _frame_shape(frame) != first_shape:
                        raise self._shape_change_error(first_shape, frame, decoded)
                    decoded += 1
                    if frame.pts is None:
                        frame.pts = next_pts if next_pts is not None else start_offset
                    next_pts = frame.pts + step
                    frame.pts -= start_offset
                    graph.push(frame)
                    encoded = self._drain(graph, encode, encoded)
        check.finish()
        if graph is None:
            what = f"none of its {check.packets} video packets" if check.packets else "it has no video packet, so none"
            raise VideoDecodeError(f"{self.name}: {what} could be decoded to a frame; the file is empty or damaged.")
        graph.push(None)
        self._drain(graph, encode, encoded)
        if encoder is not None:
            for packet in encoder.encode(None):
                spool.append(packet)
        if spool is None or len(spool) == 0:
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise UnsupportedVideoError(
                    f"{self.name}: is a still image ({stream.codec_context.name}), not a video; pass a video file."
                )
            raise UnsupportedVideoError(
                f"{self.name}: the video is too short: its {check.frames} frame(s) give no frame at {fps} fps (the "
                "reference's ffmpeg re-encoding gives an empty stream as well); pass a longer video."
            )
        return spool, frame_rate

    def _shape_change_error(self, first_shape, frame, index: int) -> UnsupportedVideoError:
        # The filter graph and the encoder are set up for the first frame's size and pixel layout; a frame of another
        # shape would be misread. (ffmpeg's command line rescales such frames to the first size, -autoscale.)
        width, height, layout = first_shape
        when = f" at {frame.time:.2f} s" if frame.time is not None else ""
        return UnsupportedVideoError(
            f"{self.name}: the frame size changes mid-stream, from {width}x{height} ({layout}) to {frame.width}x"
            f"{frame.height} ({frame.format.name}) at frame {index}{when}, which is not supported; re-encode the "
            "video to one size first (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4, which rescales to the first size)."
        )

    @staticmethod
    def _drain(graph, encode, encoded: int) -> int:
        while True:
            try:
                frame = graph.pull()
            except (BlockingIOError, EOFError):
                return encoded
            # As ffmpeg's command line: the encoder chooses the picture types, timestamps count output frames.
            frame.pict_type = av.video.frame.PictureType.NONE
            frame.pts = encoded
            encode(frame)
            encoded += 1

    @staticmethod
    def _filter_graph(first_frame, stream, fps):
        graph = av.filter.Graph()
        buffer = graph.add_buffer(
            width=first_frame.width,
            height=first_frame.height,
            format=first_frame.format.name,
            time_base=stream.time_base,
        )
        nodes = [buffer]
        for filter_name, argument in _rotation_filters(first_frame.rotation):
            nodes.append(graph.add(filter_name, argument))
        nodes.append(graph.add("fps", str(fps)))
        nodes.append(graph.add("format", "yuv420p"))
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes).configure()
        return graph

    def _copy_packets(self, container, stream, progress):
        codec_name = stream.codec_context.name
        if codec_name not in MOTION_VECTOR_CODECS:
            raise UnsupportedVideoError(
                f"{self.name}: {codec_name} video exports no motion vectors; use reencode=True to re-encode it."
            )
        spool = _PacketSpool(
            codec_name,
            extradata=stream.codec_context.extradata,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
        )
        check = _DamageCheck(self.name, stream)
        with self._progress_bar(stream, progress) as bar:
            for packet in check.demux(container):
                if packet.size:
                    spool.append(packet)
                    bar.update(1)
        check.finish()
        frame_rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return spool, Fraction(frame_rate)

    # ---------------------------------------------------------------------------------------------- second pass
    def _decoder(self):
        spool = self._spool
        decoder = av.CodecContext.create(spool.codec_name, "r")
        if spool.extradata:
            decoder.extradata = spool.extradata
        if spool.width:
            decoder.width, decoder.height = spool.width, spool.height
        # Frame threading makes exported vectors nondeterministic for some codecs; one thread keeps them stable.
        # FFmpeg's MPEG-4 decoder flags the last macroblocks of some slices of its own encoder's output as damaged,
        # and its error concealment then reads uninitialised memory, so vectors and pixels there change from run to
        # run; with concealment off ("ec": "0") decoding is deterministic and matches the reference fixtures.
        decoder.thread_count = 1
        decoder.options = {"flags2": "+export_mvs", "ec": "0"}
        return decoder

    def decode_clip(self, start_frame: int) -> VideoClip:
        """Decode the clip that starts at I-frame `start_frame` of the stream."""
        spool = self._spool
        if spool is None:
            raise ValueError("the reader is closed")
        end = min(start_frame + self.num_frames, len(spool))
        decoder = self._decoder()
        keyframe = None
        grids: list[np.ndarray] = []
        clean_frame_seen = False

        def take(frames):
            nonlocal keyframe, clean_frame_seen
            for frame in frames:
                if len(grids) == self.num_frames:
                    return
                if not (frame.is_corrupt and spool.codec_name in _CORRUPT_FLAG_CODECS):
                    clean_frame_seen = True
                elif clean_frame_seen:
                    raise VideoDecodeError(
                        f"{self.name}: frame {start_frame + len(grids)} of the stream is damaged (the decoder "
                        f"concealed errors in it, so its motion would be wrong). {_ADVICE}"
                    )
                if keyframe is None:
                    keyframe = frame.to_ndarray(format="rgb24")
                elif (frame.height, frame.width) != keyframe.shape[:2]:
                    height, width = keyframe.shape[:2]
                    raise UnsupportedVideoError(
                        f"{self.name}: the frame size changes mid-stream, from {width}x{height} to {frame.width}x"
                        f"{frame.height} in the clip at frame {start_frame}, which is not supported; use "
                        "reencode=True, or re-encode the video to one size first."
                    )
                side_data = frame.side_data.get("MOTION_VECTORS")
                vectors = side_data.to_ndarray() if side_data is not None else None
                grids.append(
                    pool_frame_motion_vectors(vectors, frame.height, frame.width, self.motion_std, self.motion_scale)
                )

        try:
            for index in range(start_frame, end):
                take(decoder.decode(av.Packet(spool.read(index))))
            take(decoder.decode(None))
        except av.FFmpegError as error:
            raise VideoDecodeError(
                f"{self.name}: decoding the clip at frame {start_frame} failed ({_reason(error)}); the file is "
                f"damaged. {_ADVICE}"
            ) from error
        finally:
            # PyAV's cached `frame.side_data` refers back to its frame; the cycle keeps every decoded frame of the
            # clip (tens of MB at 720p) alive until the cyclic collector runs. A young-generation collection (a few
            # ms) frees them now, which keeps the peak memory flat.
            gc.collect(1)
        if keyframe is None:
            raise VideoDecodeError(
                f"{self.name}: the clip at frame {start_frame} decodes to no frame; the file is damaged."
            )
        return VideoClip(
            keyframe=keyframe,
            motion_vectors=clip_motion_grid(grids, self.num_frames, self.grid_size),
            start_frame=start_frame,
            start_time=start_frame / float(self.info.frame_rate),
            num_valid_frames=len(grids),
        )

    def __iter__(self) -> Iterator[VideoClip]:
        for start in self.info.clip_starts:
            yield self.decode_clip(start)

    def __len__(self) -> int:
        return len(self.info.clip_starts)

    def close(self) -> None:
        """Delete the temporary file of encoded packets."""
        spool = getattr(self, "_spool", None)  # None too when __init__ failed before creating it
        if spool is not None:
            spool.close()
            self._spool = None

    def __enter__(self) -> VideoClipReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def iter_video_clips(video: VideoInput, **kwargs) -> Iterator[VideoClip]:
    """Yield the clips of `video` one at a time (see `VideoClipReader` for the arguments).

    Memory stays bounded whatever the video's length, so this is the way to read long videos:
    `for clip in iter_video_clips("movie.mp4", max_clips=None): ...`.
    """
    with VideoClipReader(video, **kwargs) as reader:
        yield from reader
