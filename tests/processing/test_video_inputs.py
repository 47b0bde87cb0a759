"""Awkward-but-valid and broken video inputs.

Valid inputs must give clips; broken ones must raise `VideoDecodeError` or `UnsupportedVideoError` (both `ValueError`s
and `VideoLaVITError`s) naming the file and the reason, within seconds. Every video is written here, tiny, with PyAV
or `make_sample_video`; libx264 runs with one thread so that its bytes, and so the damaged files made from them, are
the same on every machine.
"""

from __future__ import annotations

import io
import os
import pathlib
import struct
import subprocess
import sys
import textwrap
import time
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from video_lavit.errors import UnsupportedVideoError, VideoDecodeError, VideoLaVITError, VideoTooLongError
from video_lavit.processing.sample_video import make_sample_video, sample_video_frames
from video_lavit.processing.video_io import VideoClip, VideoClipReader, iter_video_clips

X264 = {"threads": "1"}
X264_B_FRAMES = {"threads": "1", "x264-params": "bframes=3:b-pyramid=normal:keyint=50"}
AV1_ENCODER = next((name for name in ("libsvtav1", "libaom-av1", "librav1e") if name in av.codecs_available), None)
# Generous for CI: every broken input here is rejected in well under a second.
MAX_SECONDS = 20.0


def read_clips(video, **kwargs) -> list[VideoClip]:
    return list(iter_video_clips(video, **kwargs))


def assert_valid_clips(clips: list[VideoClip], height: int, width: int) -> None:
    assert len(clips) >= 1
    for clip in clips:
        assert clip.motion_vectors.shape == (2, 24, 20, 36)
        assert clip.motion_vectors.dtype == torch.float32
        assert torch.isfinite(clip.motion_vectors).all()
        assert clip.keyframe.shape == (height, width, 3)
        assert clip.keyframe.dtype == np.uint8
        assert 1 <= clip.num_valid_frames <= 24


def assert_rejected(video, error: type[VideoLaVITError], *fragments: str, **kwargs) -> str:
    """`video` raises `error` quickly, with every fragment in the message; returns the message."""
    start = time.monotonic()
    with pytest.raises(error) as raised:
        read_clips(video, **kwargs)
    assert time.monotonic() - start < MAX_SECONDS
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, VideoLaVITError)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def h264_video(path: pathlib.Path, seconds: float = 4.0, **kwargs) -> str:
    kwargs = {"width": 64, "height": 48, "fps": 25, "options": X264} | kwargs
    return make_sample_video(path, seconds=seconds, **kwargs)


def write_with_pts(path: pathlib.Path, pts: list[int], time_base: Fraction, codec: str = "libx264", **options) -> None:
    """An H.264 stream whose frames have exactly the given timestamps (the rate is only a hint to the encoder)."""
    frames = sample_video_frames(64, 48, len(pts))
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=25, options=X264)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        for array, timestamp in zip(frames, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = timestamp, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def mdat_range(data: bytes) -> tuple[int, int]:
    """Byte range of the payload of the (first, 32-bit sized) `mdat` box of an MP4."""
    box = data.index(b"mdat") - 4
    (size,) = struct.unpack(">I", data[box : box + 4])
    return box + 8, box + size


# --------------------------------------------------------------------------------------------------- valid inputs
def test_h264_with_b_frames(tmp_path):
    path = h264_video(tmp_path / "b_frames.mp4", options=X264_B_FRAMES)
    with av.open(path) as container:
        types = {frame.pict_type for frame in container.decode(video=0)}
    assert av.video.frame.PictureType.B in types
    assert_valid_clips(read_clips(path), 48, 64)
    assert_valid_clips(read_clips(path, reencode=False), 48, 64)


@pytest.mark.parametrize("extension", ["mkv", "mp4"])
def test_variable_frame_rate(tmp_path, extension):
    rng = np.random.default_rng(0)
    steps = rng.choice([20, 40, 90, 150], size=59)
    pts = [0, *np.cumsum(steps).tolist()]
    path = tmp_path / f"vfr.{extension}"
    write_with_pts(path, pts, Fraction(1, 1000))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.time for frame in container.decode(stream)]
    gaps = np.diff(decoded)
    assert gaps.min() < 0.03 and gaps.max() > 0.1  # really irregular
    with VideoClipReader(path) as reader:
        # The 6 fps stream spans the source's duration, not its frame count at a nominal rate.
        assert abs(reader.info.num_frames - 6 * (decoded[-1] + 0.04)) <= 2
        clips = list(reader)
    assert_valid_clips(clips, 48, 64)


@pytest.mark.parametrize(
    ("codec", "width", "height", "extension"),
    [
        ("libx264", 34, 18, "mp4"),
        # libx264 cannot encode 4:2:0 at odd sizes; FFmpeg's mpeg4 encoder (the reference's) and VP9 can, and the
        # re-encoding keeps the odd size as ffmpeg's command line does (it gives 33x17 MPEG-4 for these too).
        ("mpeg4", 33, 17, "mkv"),
        ("libvpx-vp9", 33, 17, "webm"),
        ("libx264", 16, 16, "mp4"),
    ],
)
def test_odd_and_tiny_sizes(tmp_path, codec, width, height, extension):
    options = X264 if codec == "libx264" else None
    path = make_sample_video(
        tmp_path / f"size.{extension}", width=width, height=height, seconds=3, fps=25, codec=codec, options=options
    )
    with VideoClipReader(path) as reader:
        assert (reader.info.width, reader.info.height) == (width, height)
        clips = list(reader)
    assert_valid_clips(clips, height, width)


def test_rotation_metadata_turns_the_frames(tmp_path):
    path = tmp_path / "rotated.mp4"
    source = sample_video_frames(64, 48, 75)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=X264)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)
        for array in source:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation == 90

    clips = read_clips(path)
    assert_valid_clips(clips, 64, 48)  # H and W swapped
    # As ffmpeg's command line: turned 90 degrees counter-clockwise. The first 6 fps frame is source frame 2.
    keyframe = clips[0].keyframe.astype(np.float64)
    counter_clockwise = np.abs(keyframe - np.rot90(source[2], k=1)).mean()
    clockwise = np.abs(keyframe - np.rot90(source[2], k=-1)).mean()
    assert counter_clockwise < 10 < clockwise


def test_video_shorter_than_one_clip(tmp_path):
    path = h264_video(tmp_path / "one_second.mp4", seconds=1.0)
    with VideoClipReader(path) as reader:
        clips = list(reader)
        assert len(clips) == 1
        assert clips[0].num_valid_frames == reader.info.num_frames == 6
    motion = clips[0].motion_vectors
    assert_valid_clips(clips, 48, 64)
    assert torch.count_nonzero(motion[:, :6]) > 0
    assert torch.count_nonzero(motion[:, 6:]) == 0  # padding


@pytest.mark.parametrize(
    ("codec", "extension"),
    [
        ("mjpeg", "avi"),
        ("libvpx-vp9", "webm"),
        pytest.param(
            AV1_ENCODER, "mkv", marks=pytest.mark.skipif(AV1_ENCODER is None, reason="PyAV has no AV1 encoder")
        ),
        ("mpeg2video", "mpg"),
    ],
)
def test_codecs_without_motion_vectors_are_reencoded(tmp_path, codec, extension):
    path = make_sample_video(tmp_path / f"video.{extension}", width=64, height=48, seconds=3, fps=25, codec=codec)
    with VideoClipReader(path) as reader:
        assert reader.info.source_codec in {"mjpeg", "vp9", "libvpx-vp9", "av1", "libdav1d", "mpeg2video"}
        clips = list(reader)
    assert_valid_clips(clips, 48, 64)


@pytest.mark.parametrize("form", ["str", "path", "bytes", "bytearray", "file", "bytes_io", "row_bytes", "row_path"])
def test_input_forms_give_identical_clips(tmp_path, form):
    path = h264_video(tmp_path / "video.mp4", seconds=5.0)
    data = pathlib.Path(path).read_bytes()
    expected = read_clips(path)
    assert_valid_clips(expected, 48, 64)

    if form == "file":
        with open(path, "rb") as handle:
            clips = read_clips(handle)
    else:
        video = {
            "str": path,
            "path": pathlib.Path(path),
            "bytes": data,
            "bytearray": bytearray(data),
            "bytes_io": io.BytesIO(data),
            "row_bytes": {"path": "video.mp4", "bytes": data},  # datasets.Video(decode=False)
            "row_path": {"path": path, "bytes": None},
        }[form]
        clips = read_clips(video)
    assert len(clips) == len(expected)
    for clip, reference in zip(clips, expected, strict=True):
        assert torch.equal(clip.motion_vectors, reference.motion_vectors)
        np.testing.assert_array_equal(clip.keyframe, reference.keyframe)


@pytest.mark.parametrize("codec", ["mpeg4", "libx264"])
def test_reencode_false_reads_motion_vector_codecs(tmp_path, codec):
    path = make_sample_video(
        tmp_path / "video.mp4", width=64, height=48, seconds=5, fps=25, codec=codec, options={"threads": "1"}
    )
    with VideoClipReader(path, reencode=False) as reader:
        assert reader.info.source_codec in {"mpeg4", "h264"}
        assert reader.info.num_frames == 125  # the stream as it is, not 6 fps
        clips = list(reader)
    assert_valid_clips(clips, 48, 64)
    assert any(torch.count_nonzero(clip.motion_vectors) > 0 for clip in clips)


@pytest.mark.parametrize(("codec", "extension"), [("libvpx-vp9", "webm"), ("mjpeg", "avi")])
def test_reencode_false_rejects_codecs_without_motion_vectors(tmp_path, codec, extension):
    path = make_sample_video(tmp_path / f"video.{extension}", width=64, height=48, seconds=2, fps=25, codec=codec)
    assert_rejected(
        path, UnsupportedVideoError, f"video.{extension}", "motion vectors", "reencode=True", reencode=False
    )


def test_trailing_junk_after_a_complete_mp4_is_ignored(tmp_path):
    path = tmp_path / "junk.mp4"
    data = pathlib.Path(h264_video(tmp_path / "video.mp4")).read_bytes()
    path.write_bytes(data + np.random.default_rng(3).bytes(100))
    assert_valid_clips(read_clips(path), 48, 64)


def test_main_video_stream_is_chosen_over_a_small_first_one(tmp_path):
    """As ffmpeg's command line: the largest video stream, not the first (here a one-frame thumbnail track)."""
    path = tmp_path / "two_tracks.mkv"
    with av.open(str(path), "w") as container:
        thumbnail = container.add_stream("mjpeg", rate=1)
        thumbnail.width, thumbnail.height, thumbnail.pix_fmt = 32, 32, "yuvj420p"
        video = container.add_stream("libx264", rate=25, options=X264)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        container.mux(thumbnail.encode(av.VideoFrame.from_ndarray(sample_video_frames(32, 32, 1)[0], format="rgb24")))
        container.mux(thumbnail.encode(None))
        for array in sample_video_frames(64, 48, 100):
            container.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(video.encode(None))
    with av.open(str(path)) as container:
        assert [stream.codec_context.name for stream in container.streams.video] == ["mjpeg", "h264"]
    assert_valid_clips(read_clips(path), 48, 64)


# -------------------------------------------------------------------------------------------------- broken inputs
def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert_rejected(path, VideoDecodeError, "empty.mp4", "empty")


def test_random_bytes(tmp_path):
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    assert_rejected(path, VideoDecodeError, "random.mp4", "not a readable video")


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("These are not the frames you are looking for.\n" * 50)
    assert_rejected(path, VideoDecodeError, "notes.mp4", "not a readable video")


def test_png_renamed_mp4(tmp_path):
    path = tmp_path / "picture.mp4"
    Image.fromarray(sample_video_frames(32, 32, 1)[0]).save(path, format="PNG")
    assert_rejected(path, UnsupportedVideoError, "picture.mp4", "still image")


@pytest.mark.parametrize(("codec", "extension"), [("aac", "mp4"), ("mp2", "mp4"), ("pcm_s16le", "wav")])
def test_audio_only_file(tmp_path, codec, extension):
    path = tmp_path / f"sound.{extension}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16_000)
        sample_format = "fltp" if codec == "aac" else "s16"
        for index in range(16):
            wave = np.sin(np.arange(1024) * 0.05 + index)[None] * 0.3
            samples = wave.astype(np.float32) if codec == "aac" else (wave * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format=sample_format, layout="mono")
            frame.sample_rate, frame.pts = 16_000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert_rejected(path, UnsupportedVideoError, f"sound.{extension}", "no video stream", "audio")


def test_audio_with_cover_art_only(tmp_path):
    path = tmp_path / "song.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=16_000)
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        container.mux(cover.encode(av.VideoFrame.from_ndarray(sample_video_frames(32, 32, 1)[0], format="rgb24")))
        container.mux(cover.encode(None))
        for index in range(16):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16_000, index * 1024
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    assert_rejected(path, UnsupportedVideoError, "song.m4a", "cover art")


def test_directory(tmp_path):
    assert_rejected(tmp_path, VideoDecodeError, str(tmp_path), "directory")


def test_missing_path(tmp_path):
    assert_rejected(tmp_path / "absent.mp4", VideoDecodeError, "absent.mp4", "no such file")


@pytest.mark.parametrize(
    ("video", "fragment"),
    [
        (b"", "no bytes"),
        (42, "cannot read a int"),
        (None, "cannot read a NoneType"),
        ({"path": None, "bytes": None}, "neither 'bytes' nor 'path'"),
        ({"path": "clip.mp4", "bytes": "not bytes"}, "not bytes"),
        ("", "empty path"),
    ],
)
def test_inputs_that_are_not_videos(video, fragment):
    assert_rejected(video, VideoDecodeError, fragment)


def test_file_object_in_text_mode(tmp_path):
    path = h264_video(tmp_path / "video.mp4", seconds=1.0)
    with open(path) as handle:
        assert_rejected(handle, VideoDecodeError, "video.mp4", "text mode", "'rb'")


def test_video_too_short_for_one_6fps_frame(tmp_path):
    # ffmpeg's fps=6 filter makes no frame of two 25 fps frames, so the reference re-encoding is empty too.
    path = h264_video(tmp_path / "two_frames.mp4", seconds=2 / 25)
    assert_rejected(path, UnsupportedVideoError, "two_frames.mp4", "too short")


@pytest.mark.parametrize("faststart", [False, True], ids=["moov_at_end", "faststart"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 0.8, 0.97])
def test_truncated_mp4(tmp_path, faststart, keep):
    options = {"movflags": "faststart"} if faststart else {}
    source = tmp_path / "full.mp4"
    write_with_pts(source, list(range(100)), Fraction(1, 25), **options)
    data = source.read_bytes()
    assert (data.index(b"moov") < data.index(b"mdat")) == faststart
    assert_valid_clips(read_clips(source), 48, 64)
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    assert_rejected(path, VideoDecodeError, "cut.mp4", "truncated", "bytes missing", "re-download")


def test_mp4_cut_before_its_index(tmp_path):
    data = pathlib.Path(h264_video(tmp_path / "full.mp4")).read_bytes()
    path = tmp_path / "no_index.mp4"
    path.write_bytes(data[: mdat_range(data)[1]])  # everything up to the end of the frames, without the moov
    assert_rejected(path, VideoDecodeError, "no_index.mp4", "no 'moov' box", "interrupted")


@pytest.mark.parametrize("faststart", [False, True], ids=["moov_at_end", "faststart"])
def test_corrupt_middle_of_mp4(tmp_path, faststart):
    source = tmp_path / "full.mp4"
    write_with_pts(source, list(range(100)), Fraction(1, 25), **({"movflags": "faststart"} if faststart else {}))
    data = bytearray(source.read_bytes())
    start, end = mdat_range(bytes(data))
    middle = (start + end) // 2
    data[middle : middle + 2048] = np.random.default_rng(1).bytes(2048)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    message = assert_rejected(path, VideoDecodeError, "damaged.mp4", "damaged", "near byte", "Re-download")
    position = int(message.split("near byte ")[1].split(",")[0])
    assert abs(position - middle) < 4096  # where the damage is


def test_garbled_frames_are_not_silently_concealed(tmp_path):
    """The second half of a run of P-frames overwritten: H.264 conceals it; that must not pass silently."""
    path = h264_video(tmp_path / "full.mp4")
    data = bytearray(pathlib.Path(path).read_bytes())
    with av.open(path) as container:
        packets = [(packet.pos, packet.size) for packet in container.demux(video=0) if packet.size]
    rng = np.random.default_rng(2)
    for position, size in packets[30:46]:
        data[position + size // 2 : position + size] = rng.bytes(size - size // 2)
    damaged = tmp_path / "garbled.mp4"
    damaged.write_bytes(bytes(data))
    message = assert_rejected(damaged, VideoDecodeError, "garbled.mp4", "damaged")
    assert "concealed" in message or "decoding failed" in message


@pytest.mark.parametrize(
    ("codec", "extension", "error_fragment"),
    [
        ("libx264", "mkv", "truncated"),
        ("libvpx-vp9", "webm", "truncated"),
        ("mpeg4", "avi", "incomplete or damaged"),
        ("mjpeg", "avi", "incomplete or damaged"),
    ],
)
def test_truncated_other_containers(tmp_path, codec, extension, error_fragment):
    options = X264 if codec == "libx264" else None
    data = pathlib.Path(
        make_sample_video(tmp_path / f"full.{extension}", width=48, height=32, seconds=4, codec=codec, options=options)
    ).read_bytes()
    path = tmp_path / f"cut.{extension}"
    path.write_bytes(data[: len(data) // 2])
    assert_rejected(path, VideoDecodeError, f"cut.{extension}", error_fragment)


def test_corrupt_middle_of_mkv_loses_the_rest(tmp_path):
    data = bytearray(pathlib.Path(h264_video(tmp_path / "full.mkv")).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2048] = np.random.default_rng(4).bytes(2048)
    path = tmp_path / "damaged.mkv"
    path.write_bytes(bytes(data))
    assert_rejected(path, VideoDecodeError, "damaged.mkv", "damaged")


def test_corrupt_middle_of_avi_loses_indexed_frames(tmp_path):
    data = bytearray(
        pathlib.Path(
            make_sample_video(
                tmp_path / "full.avi", width=64, height=48, seconds=4, fps=25, codec="mpeg4", options={"threads": "1"}
            )
        ).read_bytes()
    )
    start = int(len(data) * 0.5)
    data[start : start + 2048] = np.random.default_rng(0).bytes(2048)
    path = tmp_path / "damaged.avi"
    path.write_bytes(bytes(data))
    message = assert_rejected(path, VideoDecodeError, "damaged.avi", "index lists 100 video frames", "lost")
    lost = int(message.split("first lost one is at byte ")[1].split(")")[0])
    assert start - 1024 < lost < start + 2048


def test_damaged_timestamp_does_not_stall(tmp_path):
    """One packet's PTS 20 hours off: the fps filter would fill the gap with 430000 frames."""
    source = h264_video(tmp_path / "full.mp4")
    path = tmp_path / "jump.ts"
    with av.open(source) as reader, av.open(str(path), "w", format="mpegts") as writer:
        stream = reader.streams.video[0]
        output = writer.add_stream_from_template(stream)
        for index, packet in enumerate(packet for packet in reader.demux(stream) if packet.dts is not None):
            if index == 50:
                packet.pts += int(20 * 3600 / stream.time_base)
            packet.stream = output
            writer.mux(packet)
    assert_rejected(path, VideoDecodeError, "jump.ts", "timestamps jump")


def test_damaged_frame_rate_does_not_stall(tmp_path):
    """An AVI whose header says each frame lasts a day: the fps filter would repeat every frame 500000 times."""
    data = bytearray(
        pathlib.Path(
            make_sample_video(tmp_path / "full.avi", width=48, height=32, seconds=2, codec="mpeg4")
        ).read_bytes()
    )
    header = data.index(b"strh")
    assert data[header + 8 : header + 12] == b"vids"
    data[header + 28 : header + 32] = struct.pack("<I", 24 * 86_400)  # dwScale: 24 fps becomes one frame a day
    path = tmp_path / "slow_motion.avi"
    path.write_bytes(bytes(data))
    # The header's length (48 days) is refused before anything is decoded; without the limit, the gap between the
    # first two frames is.
    assert_rejected(path, VideoTooLongError, "slow_motion.avi", "header declares 48 d", "max_duration", progress=False)
    assert_rejected(path, VideoDecodeError, "slow_motion.avi", "frame rate or a timestamp", max_duration=None)


@pytest.mark.parametrize("reencode", [True, False])
def test_resolution_change_mid_stream(tmp_path, reencode):
    """The filter graph and encoder are set up for the first frame's size: a new size must be refused, not misread."""
    path = tmp_path / "two_sizes.ts"

    def encode(width, height, first_pts, count):
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base, encoder.framerate, encoder.options = Fraction(1, 25), 25, X264
        packets = []
        for index, array in enumerate(sample_video_frames(width, height, count)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = first_pts + index, Fraction(1, 25)
            packets += encoder.encode(frame)
        return packets + encoder.encode(None)

    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.time_base = 64, 48, Fraction(1, 25)
        for packet in encode(64, 48, 0, 10) + encode(48, 32, 10, 90):
            packet.stream = stream
            container.mux(packet)
    fragments = ("two_sizes.ts", "64x48", "48x32", "size changes")
    assert_rejected(path, UnsupportedVideoError, *fragments, reencode=reencode)


@pytest.mark.parametrize("reencode", [True, False])
def test_codec_without_decoder(tmp_path, reencode):
    data = pathlib.Path(
        make_sample_video(tmp_path / "video.avi", width=48, height=32, seconds=2, codec="mpeg4")
    ).read_bytes()
    assert data.count(b"FMP4") == 2  # the AVI's FourCCs
    path = tmp_path / "unknown.avi"
    path.write_bytes(data.replace(b"FMP4", b"QQQQ"))
    assert_rejected(path, UnsupportedVideoError, "unknown.avi", "no decoder", reencode=reencode)


def test_damaged_inputs_never_crash_the_interpreter(tmp_path):
    """Many truncations and corruptions of several formats, in a child process: a segfault would show as a signal.

    Each must give valid clips (some damage is undetectable) or raise our errors; nothing else may escape.
    """
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from video_lavit.errors import VideoLaVITError
        from video_lavit.processing.sample_video import make_sample_video
        from video_lavit.processing.video_io import iter_video_clips

        rng = np.random.default_rng(5)
        escaped = []
        for codec, extension in [("libx264", "mp4"), ("libx264", "mkv"), ("mpeg4", "avi"), ("mpeg2video", "mpg"),
                                 ("libx264", "ts"), ("libvpx-vp9", "webm")]:
            options = {"threads": "1"} if codec == "libx264" else None
            path = f"{sys.argv[1]}/source.{extension}"
            data = open(make_sample_video(path, width=48, height=32, seconds=2, codec=codec, options=options),
                        "rb").read()
            for trial in range(16):
                damaged = bytearray(data)
                offset = int(rng.integers(0, len(damaged)))
                if trial % 4 == 0:  # truncated
                    damaged = damaged[: max(offset, 1)]
                elif trial % 4 == 1:  # a run of random bytes
                    size = int(rng.choice([8, 64, 512]))
                    damaged[offset : offset + size] = rng.bytes(size)
                elif trial % 4 == 2:  # scattered random bytes
                    for _ in range(20):
                        damaged[int(rng.integers(0, len(damaged)))] = int(rng.integers(0, 256))
                else:  # a run of bytes lost
                    del damaged[offset : offset + int(rng.integers(1, 2000))]
                reencode = extension in ("mpg", "webm") or trial % 2 == 0
                try:
                    for clip in iter_video_clips(bytes(damaged), reencode=reencode):
                        assert clip.motion_vectors.shape == (2, 24, 20, 36)
                        assert np.isfinite(clip.motion_vectors.numpy()).all()
                except VideoLaVITError:
                    pass
                except Exception as error:
                    escaped.append(f"{extension} trial {trial}: {type(error).__name__}: {error}")
        print("\\n".join(escaped))
        sys.exit(1 if escaped else 0)
        """
    )
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert result.returncode >= 0, (
        f"the interpreter was killed by signal {-result.returncode}:\n{result.stderr[-3000:]}"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert time.monotonic() - start < 120
