"""Reading videos into Video-LaVIT clips with PyAV: keyframes plus motion-vector grids.

Implements the reference's video pre-processing (paper section 3.1). The reference shells out to an ffmpeg binary
that re-encodes the whole video to an MPEG-4 Part 2 file at 6 fps and 8 Mb/s, decodes that file completely with
motion-vector export, keeps every RGB frame and a dense float64 (H, W, 2) vector map per frame, and only then picks
clips.

What we do instead, with the same numbers:
1. One streaming pass re-encodes in process (PyAV's FFmpeg: decoder -> `fps` filter -> `mpeg4` encoder, settings and
   timestamps as the reference's ffmpeg command line, see `stream_timing`) and spools the encoded packets to an
   anonymous temporary file. Only the packets' offsets and I-frame flags stay in memory, so memory does not grow
   with the video's length. Source frames that the `fps` filter drops and no other frame refers to are not decoded
   at all (`frame_skipping`; H.264 and HEVC sources), which leaves the encoded stream unchanged.
2. The clip starts are chosen from the I-frame flags (`clip_sampling.select_clip_starts`).
3. Only the selected clips are decoded, each from its own I-frame (MPEG-4 without B-frames decodes from any I-frame
   bit-identically), with motion-vector export; each frame's vectors are pooled straight into the macroblock grid.

The encoder of step 1 runs on a thread of its own beside the source decoder, and the clips of step 3 are decoded a
few ahead on worker threads (`pipelining`; with `pipeline=False` the reader starts no thread of its own); neither
changes a result.

The clips are spread evenly over the whole video, so all of it is read; `max_duration` (3 hours by default: every
video of WebVid, ActivityNet and Video-MME is shorter) stops endless streams and hours-long inputs with
`VideoTooLongError`, at once when the header declares such a length. The temporary file is checked against the free
space of the temporary folder before and while it is written, and deleted when the reader closes (it has no name on
disk, so it goes with the process too). Inputs are opened as `video_sources` describes: only the file named, only
self-contained containers.

Deliberate differences from the reference:
- ffmpeg's command line gives the `mpeg4` encoder one slice per thread and picks the thread count from the
  machine's cores (min(cores, macroblock rows) + 1, at most 16), so the reference's motion vectors depend on the
  machine it runs on. We make the count a setting, `encoder_threads`, defaulting to 16: what ffmpeg picks on any
  machine with 15 or more cores.
- Error concealment is off when decoding the clips. FFmpeg's concealment of the macroblocks it (wrongly) thinks
  damaged in slice-threaded MPEG-4 output reads uninitialised memory, which makes the reference's vectors change
  from run to run; without it they are deterministic (and equal to our stored reference outputs).
- Damage that FFmpeg conceals raises `VideoDecodeError` instead of giving wrong clips (`stream_checks`).
- `reencode=False` (our addition) reads the stream as it is: clips start at the container's keyframes, and the
  vectors are whatever the codec exported (exact for MPEG-4 streams with GOP 12 and no B-frames at 6 fps,
  approximate otherwise). Codecs that export vectors: MPEG-4 Part 2, H.264, MPEG-1/2 video and H.263. HEVC, VP8, VP9,
  AV1 and intra-only codecs (MJPEG, ...) export none: use the default re-encoding for those.

Other inputs that cannot be used raise `UnsupportedVideoError`: no video stream (or only cover art), a still image,
a video too short to give one frame at `fps`, a codec FFmpeg cannot decode, a frame size that changes mid-stream,
and frames larger than MPEG-4 Part 2 can encode (8191 pixels a side). Of several video streams, the one ffmpeg's
command line would pick is read: the largest, default ones first, never an attached picture.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import torch
from av.sidedata.sidedata import SideDataContainer
from huggingface_hub.utils import tqdm

from ..errors import InvalidInputError, UnsupportedVideoError, VideoDecodeError, VideoLaVITError
from .clip_sampling import select_clip_starts
from .frame_skipping import SkippingNotApplicable, SourceFrameSkipper, skipping_applies
from .motion_vectors import MOTION_INPUT_SCALE, MOTION_VECTOR_STD, clip_motion_grid, pool_frame_motion_vectors
from .packet_spool import PacketSpool
from .pipelining import EncoderThread, prefetch, prefetch_workers
from .stream_checks import ADVICE, CORRUPT_FLAG_CODECS, StreamDamageCheck, reason
from .stream_timing import CommandLineTimeline, check_duration
from .video_sources import VideoInput, describe_video_input, open_video_container

# Codecs whose FFmpeg decoders export motion vectors (`flags2=+export_mvs`).
MOTION_VECTOR_CODECS = frozenset({"mpeg4", "h264", "mpeg1video", "mpeg2video", "h263", "h263p"})
# The default `max_duration`: three hours. The longest videos of WebVid, ActivityNet and Video-MME run an hour.
DEFAULT_MAX_DURATION = 3 * 3600.0
# MPEG-4 Part 2 codes a frame's width and height in 13 bits.
MPEG4_MAX_SIZE = 8191
# ffmpeg's command line never runs the MPEG-4 encoder with more slices than this.
MAX_ENCODER_THREADS = 16
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


def _integer(value, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer of at least {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{name} must be at most {maximum}, got {value!r}.")
    return int(value)


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidInputError(f"{name} must be a positive number, got {value!r}.")
    if not math.isfinite(float(value)) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive, finite number, got {value!r}.")
    return float(value)


def check_reader_options(
    *,
    reencode=True,
    progress=None,
    pipeline=True,
    fps,
    num_frames,
    max_clips,
    grid_size,
    bit_rate,
    encoder_threads,
    motion_std,
    motion_scale,
    max_duration,
) -> None:
    """Raise `InvalidInputError` for a setting of `VideoClipReader` that cannot give a correct result (`reencode` and
    `progress` are accepted for convenience and need no check)."""
    if not isinstance(pipeline, bool):
        raise InvalidInputError(f"pipeline must be True or False, got {pipeline!r}.")
    _integer(fps, "fps", 1, 120)
    _integer(num_frames, "num_frames", 2, 1024)
    if max_clips is not None:
        _integer(max_clips, "max_clips", 1)
    if not isinstance(grid_size, (tuple, list)) or len(grid_size) != 2:
        raise InvalidInputError(f"the motion grid size must be (height, width), got {grid_size!r}.")
    for value, what in zip(grid_size, ("height", "width")):
        _integer(value, f"the motion grid {what}", 1, 1024)
    _integer(bit_rate, "bit_rate", 1000, 10**9)
    _integer(encoder_threads, "encoder_threads", 1, MAX_ENCODER_THREADS)
    if not isinstance(motion_std, (tuple, list)) or len(motion_std) != 2:
        raise InvalidInputError(f"motion_std must hold the (x, y) std, got {motion_std!r}.")
    for value, axis in zip(motion_std, "xy"):
        _positive(value, f"motion_std ({axis})")
    _positive(motion_scale, "motion_scale")
    if max_duration is not None:
        _positive(max_duration, "max_duration")


_TS_DISCONT = av.format.Flags.ts_discont.value
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


def _declared_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """The length the header declares (the longer of the container's and the stream's), or None.

    None for formats that allow timestamp discontinuities (MPEG-TS/PS, ...): FFmpeg estimates their length from the
    first and last timestamps, which a clock that jumps makes meaningless (the timeline is checked as it is read).
    """
    if container.format.flags & _TS_DISCONT:
        return None
    candidates = []
    if container.duration is not None and container.duration > 0:
        candidates.append(container.duration / av.time_base)
    if stream.duration is not None and stream.duration > 0 and stream.time_base:
        candidates.append(float(stream.duration * stream.time_base))
    return max(candidates) if candidates else None


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
        encoder_threads (`int`): slices of the MPEG-4 encoder, 1 to 16 (see the module docstring).
        motion_std (`tuple[float, float]`): dataset std of motion in frame-size units.
        motion_scale (`float`): the std is divided by this.
        progress (`bool` or `None`): show a progress bar over the source frames; `None` shows one for videos longer
            than two minutes. `huggingface_hub.utils.disable_progress_bars()` silences it globally.
        max_duration (`float` or `None`): most seconds of video to read (3 hours by default); longer inputs and
            endless streams raise `VideoTooLongError`. `None` reads any length.
        pipeline (`bool`): let decoding and encoding overlap on threads (default; see `pipelining`): the
            re-encoding's encoder beside the source decoder, and the next clips decoded while the caller works on
            one. `False` starts no thread of its own (FFmpeg's decoder and encoder threads still run), for when
            every core runs a reader of its own. The clips are the same either way.

    Raises:
        `VideoDecodeError`, `UnsupportedVideoError` (`VideoTooLongError`): the video cannot be used (see the module
            docstring); `InvalidInputError`: a setting out of range; `OutputError`: no room for the temporary file.
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
        max_duration: float | None = DEFAULT_MAX_DURATION,
        pipeline: bool = True,
    ):
        self._spool: PacketSpool | None = None
        self._iterators: weakref.WeakSet = weakref.WeakSet()
        check_reader_options(
            fps=fps,
            num_frames=num_frames,
            max_clips=max_clips,
            grid_size=grid_size,
            bit_rate=bit_rate,
            encoder_threads=encoder_threads,
            motion_std=motion_std,
            motion_scale=motion_scale,
            max_duration=max_duration,
            pipeline=pipeline,
        )
        self.name = describe_video_input(video)
        self.num_frames = num_frames
        self.grid_size = tuple(grid_size)
        self.motion_std = tuple(motion_std)
        self.motion_scale = motion_scale
        self.max_duration = max_duration
        self.pipeline = pipeline

        # Leaving out source frames the re-encoding drops (`frame_skipping`) may need a second reading of the input.
        skip_frames = not hasattr(video, "read")
        try:
            while True:
                try:
                    with open_video_container(video, self.name) as container:
                        stream = _video_stream(container, self.name)
                        declared = _declared_seconds(container, stream)
                        check_duration(declared, max_duration, self.name, "its header declares")
                        if reencode:
                            self._spool, frame_rate = self._transcode(
                                container, stream, fps, bit_rate, encoder_threads, progress, skip_frames, pipeline
                            )
                        else:
                            self._spool, frame_rate = self._copy_packets(container, stream, progress)
                        source_codec = stream.codec_context.name
                    break
                except SkippingNotApplicable:
                    skip_frames = False
        except av.FFmpegError as error:
            self.close()
            raise VideoDecodeError(
                f"{self.name}: reading the video failed ({reason(error)}); the file is damaged or not a supported "
                "video."
            ) from error
        except OSError as error:
            self.close()
            if isinstance(error, VideoLaVITError):
                raise
            # A file object's read failed (a disk or network error): PyAV passes Python's error through.
            raise VideoDecodeError(
                f"{self.name}: reading the file failed ({reason(error)}); check that it can be read completely "
                "(the disk, network share or stream broke off)."
            ) from error
        except BaseException:
            self.close()
            raise

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

    def _expected_bytes(self, seconds: float | None, width: int, height: int, fps: int, bit_rate: int) -> int | None:
        """A low estimate of the re-encoded stream's size from the declared length (bounded by `max_duration`).

        The MPEG-4 encoder rarely reaches `bit_rate` at 6 fps; a quarter of a bit per pixel is below what it uses for
        most videos, so the check up front only refuses videos that clearly cannot fit (the free space is checked
        again while writing).
        """
        if seconds is None:
            return None
        if self.max_duration is not None:
            seconds = min(seconds, self.max_duration)
        return int(seconds * min(bit_rate, width * height * fps / 4) / 8)

    def _transcode(
        self, container, stream, fps, bit_rate, encoder_threads, progress, skip_frames=False, pipeline=True
    ):
        stream.thread_type = "AUTO"
        timeline = CommandLineTimeline(container, stream)
        time_base = Fraction(timeline.time_base)
        skipper = None
        if skip_frames and skipping_applies(container, stream):
            skipper = SourceFrameSkipper(stream.codec_context, time_base, fps)
        spool = None
        encoder = None
        encoder_thread = None
        graph = None
        frame_rate = Fraction(fps)
        encoded = 0
        decoded = 0
        first_shape = None
        declared = _declared_seconds(container, stream)

        def write(frame):
            for packet in encoder.encode(frame):
                spool.append(packet)

        def encode(frame):
            nonlocal encoder, encoder_thread, spool
            if encoder is None:
                encoder = av.CodecContext.create("mpeg4", "w")
                encoder.width, encoder.height = frame.width, frame.height
                encoder.pix_fmt = "yuv420p"
                encoder.bit_rate = bit_rate
                encoder.time_base = 1 / frame_rate
                encoder.framerate = frame_rate
                encoder.thread_type = "SLICE"
                encoder.thread_count = encoder_threads
                expected_bytes = self._expected_bytes(declared, frame.width, frame.height, fps, bit_rate)
                spool = PacketSpool(
                    self.name, "mpeg4", width=frame.width, height=frame.height, expected_bytes=expected_bytes
                )
                if pipeline:
                    encoder_thread = EncoderThread(write)
            if encoder_thread is not None:
                encoder_thread.put(frame)
            else:
                write(frame)

        check = StreamDamageCheck(self.name, stream, declared, output_fps=fps)
        try:
            with self._progress_bar(stream, progress) as bar:
                for source_packet in check.demux(container):
                    timeline.correct_packet(source_packet)
                    if skipper is None:
                        frames = ((frame, False) for frame in check.decode(source_packet))
                    else:
                        skipper.before_decode(source_packet)
                        frames = skipper.frames(check.decode(source_packet))
                    for frame, placeholder in frames:
                        if placeholder:
                            check.frames += 1
                        bar.update(1)
                        if graph is None:
                            self._check_encodable(frame)
                            graph = self._filter_graph(frame, stream, fps, time_base)
                            first_shape = _frame_shape(frame)
                        elif _frame_shape(frame) != first_shape:
                            raise self._shape_change_error(first_shape, frame, decoded)
                        decoded += 1
                        frame.pts = timeline.frame_pts(frame)
                        seconds = float(frame.pts * time_base)
                        check.check_frame_time(seconds)
                        check_duration(seconds, self.max_duration, self.name, "it holds more than")
                        if skipper is not None:
                            skipper.pushed(frame.pts, placeholder)
                        graph.push(frame)
                        encoded = self._drain(graph, encode, encoded)
            check.finish()
            if skipper is not None:
                skipper.finish()
            if graph is None:
                what = (
                    f"none of its {check.packets} video packets"
                    if check.packets
                    else "it has no video packet, so none"
                )
                raise VideoDecodeError(
                    f"{self.name}: {what} could be decoded to a frame; the file is empty or damaged."
                )
            graph.push(None)
            self._drain(graph, encode, encoded)
            if encoder_thread is not None:
                encoder_thread.finish()
            elif encoder is not None:
                write(None)
        except BaseException as error:
            if encoder_thread is not None:
                encoder_thread.close()
            if spool is not None:
                spool.close()
            if encoder_thread is not None and encoder_thread.error is not None and isinstance(error, Exception):
                # The encoder failed first (one thread would have stopped there): its error is the one to tell.
                raise encoder_thread.error from error
            raise
        if spool is None or len(spool) == 0:
            if spool is not None:
                spool.close()
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise UnsupportedVideoError(
                    f"{self.name}: is a still image ({stream.codec_context.name}), not a video; pass a video file."
                )
            raise UnsupportedVideoError(
                f"{self.name}: the video is too short: its {check.frames} frame(s) give no frame at {fps} fps (the "
                "reference's ffmpeg re-encoding gives an empty stream as well); pass a longer video."
            )
        return spool, frame_rate

    def _check_encodable(self, frame: av.VideoFrame) -> None:
        """Refuse frames larger than MPEG-4 Part 2 can encode (rotation only swaps the sides)."""
        if max(frame.width, frame.height) > MPEG4_MAX_SIZE:
            raise UnsupportedVideoError(
                f"{self.name}: its frames are {frame.width}x{frame.height} pixels, larger than the {MPEG4_MAX_SIZE} "
                "pixels a side that MPEG-4 Part 2 (the reference's re-encoding, which gives the motion vectors) can "
                "encode; scale the video down first (e.g. ffmpeg -i IN -vf scale=-2:1080 -c:v libx264 OUT.mp4)."
            )

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
    def _filter_graph(first_frame, stream, fps, time_base):
        graph = av.filter.Graph()
        buffer = graph.add_buffer(
            width=first_frame.width,
            height=first_frame.height,
            format=first_frame.format.name,
            time_base=time_base,
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
                f"{self.name}: {codec_name} video exports no motion vectors; let it be re-encoded (reencode=True, "
                "the default; on the command line, leave out --no-reencode)."
            )
        expected_bytes = None
        if container.size and container.size > 0:
            expected_bytes = int(container.size)
        spool = PacketSpool(
            self.name,
            codec_name,
            extradata=stream.codec_context.extradata,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            expected_bytes=expected_bytes,
        )
        timeline = CommandLineTimeline(container, stream)
        time_base = Fraction(timeline.time_base)
        first_time = None
        check = StreamDamageCheck(self.name, stream, _declared_seconds(container, stream))
        try:
            with self._progress_bar(stream, progress) as bar:
                for packet in check.demux(container):
                    if not packet.size:
                        continue
                    timeline.correct_packet(packet)
                    timestamp = packet.pts if packet.pts is not None else packet.dts
                    seconds = spool.times[-1] if spool.times else 0.0
                    if timestamp is not None:
                        first_time = timestamp if first_time is None else min(first_time, timestamp)
                        seconds = float((timestamp - first_time) * time_base)
                        check_duration(seconds, self.max_duration, self.name, "it holds more than")
                    spool.append(packet)
                    spool.times.append(seconds)
                    bar.update(1)
            check.finish()
        except BaseException:
            spool.close()
            raise
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
            raise InvalidInputError(f"{self.name}: the reader is closed; read the clips before closing it.")
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
                if not (frame.is_corrupt and spool.codec_name in CORRUPT_FLAG_CODECS):
                    clean_frame_seen = True
                elif clean_frame_seen:
                    raise VideoDecodeError(
                        f"{self.name}: frame {start_frame + len(grids)} of the stream is damaged (the decoder "
                        f"concealed errors in it, so its motion would be wrong). {ADVICE}"
                    )
                if keyframe is None:
                    keyframe = frame.to_ndarray(format="rgb24")
                elif (frame.height, frame.width) != keyframe.shape[:2]:
                    height, width = keyframe.shape[:2]
                    raise UnsupportedVideoError(
                        f"{self.name}: the frame size changes mid-stream, from {width}x{height} to {frame.width}x"
                        f"{frame.height} in the clip at frame {start_frame}, which is not supported; let it be "
                        "re-encoded (reencode=True, the default; on the command line, leave out --no-reencode), or "
                        "re-encode the video to one size first."
                    )
                # A container of our own, not the frame's cached `frame.side_data`: that one and its frame refer to
                # each other, and the cycle would keep every decoded frame of the clip (tens of MB at 720p) alive
                # until the cyclic garbage collector runs.
                side_data = SideDataContainer(frame).get("MOTION_VECTORS")
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
                f"{self.name}: decoding the clip at frame {start_frame} failed ({reason(error)}); the file is "
                f"damaged. {ADVICE}"
            ) from error
        if keyframe is None:
            raise VideoDecodeError(
                f"{self.name}: the clip at frame {start_frame} decodes to no frame; the file is damaged."
            )
        motion_vectors = clip_motion_grid(grids, self.num_frames, self.grid_size)
        if not np.isfinite(motion_vectors.numpy()).all():
            raise InvalidInputError(
                f"{self.name}: motion_std {self.motion_std} and motion_scale {self.motion_scale} give non-finite "
                "motion values; use the processor's defaults (or values near them)."
            )
        return VideoClip(
            keyframe=keyframe,
            motion_vectors=motion_vectors,
            start_frame=start_frame,
            start_time=spool.times[start_frame] if spool.times else start_frame / float(self.info.frame_rate),
            num_valid_frames=len(grids),
        )

    def __iter__(self) -> Iterator[VideoClip]:
        starts = self.info.clip_starts
        workers = min(prefetch_workers(), len(starts)) if self.pipeline else 1
        if workers > 1:
            clips = _ClipIterator(self.name, prefetch(self.decode_clip, starts, workers))
        else:
            clips = _ClipIterator(self.name, (self.decode_clip(start) for start in starts))
        self._iterators.add(clips)  # stopped when the reader closes
        return clips

    def __len__(self) -> int:
        return len(self.info.clip_starts)

    def close(self) -> None:
        """Stop the clip iterations under way and delete the temporary file of encoded packets."""
        for clips in list(getattr(self, "_iterators", ())):
            clips.stop()
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


class _ClipIterator:
    """An iteration over a reader's clips; once its reader closes, its worker threads stop and it refuses to go on."""

    def __init__(self, name: str, clips: Iterator[VideoClip]):
        self.name = name
        self.clips = clips
        self.stopped = False

    def __iter__(self) -> _ClipIterator:
        return self

    def __next__(self) -> VideoClip:
        if self.stopped:
            raise InvalidInputError(f"{self.name}: the reader is closed; read the clips before closing it.")
        return next(self.clips)

    def stop(self) -> None:
        self.stopped = True
        try:
            self.clips.close()  # cancels the clips not started and waits for those being decoded
        except ValueError:  # being advanced on another thread: that call finds the reader closed
            pass


def iter_video_clips(video: VideoInput, **kwargs) -> Iterator[VideoClip]:
    """Yield the clips of `video` one at a time (see `VideoClipReader` for the arguments).

    Memory stays bounded whatever the video's length, so this is the way to read long videos:
    `for clip in iter_video_clips("movie.mp4", max_clips=None): ...`.
    """
    with VideoClipReader(video, **kwargs) as reader:
        yield from reader


__all__ = [
    "DEFAULT_MAX_DURATION",
    "MOTION_VECTOR_CODECS",
    "VideoClip",
    "VideoClipReader",
    "VideoInput",
    "VideoStreamInfo",
    "check_reader_options",
    "describe_video_input",
    "iter_video_clips",
]
