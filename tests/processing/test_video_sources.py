"""Hostile and careless video inputs: nothing read but the file named, no unbounded work, bad settings refused.

Every file is written here with PyAV. Where a network request must not happen, a real HTTP server on the loopback
counts the requests it gets; the reference behaviour of ffmpeg's command line is that of the ffmpeg binary that
`imageio-ffmpeg` (a dependency) ships, run with the reference's command.
"""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from video_lavit import VideoLaVITVideoProcessor
from video_lavit.errors import (
    InvalidInputError,
    OutputError,
    UnsupportedVideoError,
    VideoDecodeError,
    VideoLaVITError,
    VideoTooLongError,
)
from video_lavit.processing import packet_spool
from video_lavit.processing.sample_video import make_sample_video, sample_video_frames
from video_lavit.processing.video_io import VideoClipReader

X264 = {"threads": "1"}
MAX_SECONDS = 20.0  # every refusal below comes in well under a second; generous for CI


def tiny_video(path, seconds=2.0, **kwargs) -> str:
    return make_sample_video(
        path, **({"width": 64, "height": 48, "fps": 25, "options": X264} | kwargs), seconds=seconds
    )


def rejected(error, *fragments, **kwargs) -> str:
    """Run `VideoClipReader(**kwargs)` and check it raises `error` quickly, with every fragment in the message."""
    start = time.monotonic()
    with pytest.raises(error) as raised:
        VideoClipReader(**kwargs).close()
    assert time.monotonic() - start < MAX_SECONDS
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


class CountingServer:
    """An HTTP server on the loopback that serves a small valid video and counts every request."""

    def __init__(self, body: bytes):
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                owner.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server(tmp_path):
    with open(tiny_video(tmp_path / "served.mp4"), "rb") as file:
        body = file.read()
    with CountingServer(body) as running:
        yield running


# ------------------------------------------------------------------------------------------ only what is named
def referencing_files(directory, url: str) -> dict[str, str]:
    """Text files that make FFmpeg's demuxers read other files or URLs, each under a name that hides it."""
    sibling = os.path.join(directory, "sibling.mp4")
    return {
        "list.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nfile:{sibling}\n#EXTINF:2.0,\n{url}/a.mp4\n"
        "#EXT-X-ENDLIST\n",
        "playlist.mp4": f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{url}/b.mp4\n#EXT-X-ENDLIST\n",
        "concat.mp4": "ffconcat version 1.0\nfile sibling.mp4\n",
        "manifest.mpd": f'<?xml version="1.0"?><MPD><Period><AdaptationSet><Representation><BaseURL>{url}/c.mp4'
        "</BaseURL></Representation></AdaptationSet></Period></MPD>",
        "session.sdp": "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\n",
    }


@pytest.mark.parametrize("form", ["path", "bytes", "file"])
def test_playlists_and_scripts_never_open_what_they_name(tmp_path, server, form):
    tiny_video(tmp_path / "sibling.mp4")
    for name, text in referencing_files(tmp_path, server.url).items():
        path = tmp_path / name
        path.write_text(text)
        video = {"path": str(path), "bytes": path.read_bytes(), "file": io.BytesIO(path.read_bytes())}[form]
        message = rejected(UnsupportedVideoError, video=video)
        assert "self-contained" in message
        if form == "path":
            assert name in message
    assert server.requests == []  # no URL of any playlist was fetched


def test_hls_and_concat_are_named_in_the_message(tmp_path, server):
    files = referencing_files(tmp_path, server.url)
    for name, what in [("list.m3u8", "HLS playlist"), ("playlist.mp4", "HLS playlist"), ("concat.mp4", "ffconcat")]:
        (tmp_path / name).write_text(files[name])
        rejected(UnsupportedVideoError, name, what, video=str(tmp_path / name))


def test_a_file_named_like_a_protocol_url_is_read_as_that_file(tmp_path, monkeypatch):
    """`file:sibling.mp4` is a file name, not FFmpeg's `file:` protocol pointing at `sibling.mp4`."""
    monkeypatch.chdir(tmp_path)
    tiny_video(tmp_path / "sibling.mp4", seconds=2.0)
    tiny_video(tmp_path / "file:sibling.mp4", seconds=6.0)
    with VideoClipReader("file:sibling.mp4") as reader:
        assert reader.info.num_frames == 36  # the named file's 6 s, not the sibling's 2 s
    for name in ["pipe:0", "concat:sibling.mp4|sibling.mp4", "subfile,,start,0,end,0,,:sibling.mp4"]:
        rejected(VideoDecodeError, name, "no such file", video=name)


def test_urls_are_not_downloaded(server):
    rejected(VideoDecodeError, "is a URL", "local files only", video=f"{server.url}/video.mp4")
    rejected(VideoDecodeError, "is a URL", video={"path": f"{server.url}/video.mp4", "bytes": None})
    assert server.requests == []


def test_pipes_devices_and_folders_are_not_opened_by_path(tmp_path):
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)  # opening it would block until a writer comes
    rejected(VideoDecodeError, "not a regular file", video=str(fifo))
    rejected(VideoDecodeError, "not a regular file", video="/dev/zero")
    rejected(VideoDecodeError, "is a directory", video=str(tmp_path))


# --------------------------------------------------------------------------------------------- bounded work
def ts_segment(seconds: float, shift: int = 0) -> bytes:
    """An MPEG-TS file of the procedural video whose timestamps start at 0."""
    buffer = io.BytesIO()
    frames = sample_video_frames(64, 48, int(seconds * 25), shift=(2 + shift, 1))
    with av.open(buffer, "w", format="mpegts") as container:
        stream = container.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def join_ts(segments: list[bytes], counters: dict | None = None) -> bytes:
    """Segments one after the other as one transport stream: continuity counters go on, timestamps restart."""
    counters = {} if counters is None else counters
    joined = bytearray()
    for segment in segments:
        for start in range(0, len(segment), 188):
            packet = bytearray(segment[start : start + 188])
            pid = ((packet[1] & 0x1F) << 8) | packet[2]
            if packet[3] & 0x10:  # the packet has a payload: its counter advances
                counters[pid] = (counters.get(pid, -1) + 1) & 0xF
                packet[3] = (packet[3] & 0xF0) | counters[pid]
            joined += packet
    return bytes(joined)


def test_an_endless_live_stream_stops_at_max_duration():
    segment = ts_segment(2.0)
    read_end, write_end = os.pipe()
    stop = threading.Event()

    def feed():  # a live stream: 2 s segments forever, each restarting its clock
        counters = {}
        with open(write_end, "wb") as pipe:
            while not stop.is_set():
                try:
                    pipe.write(join_ts([segment], counters))
                except (BrokenPipeError, ValueError, OSError):
                    return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        with open(read_end, "rb") as stream:
            message = rejected(VideoTooLongError, "max_duration=30", "endless", video=stream, max_duration=30)
            assert "more than" in message
    finally:
        stop.set()
        feeder.join(timeout=10)
    assert not feeder.is_alive()


def sparse_video(path, last_time: float, size=(1920, 1080)) -> str:
    """Two frames, at 0 s and at `last_time` s: a few KB that the fps filter would turn into hours of frames."""
    width, height = size
    frames = sample_video_frames(width, height, 2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options=X264)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for array, seconds in zip(frames, [0.0, last_time]):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = int(seconds * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return str(path)


def test_sparse_timestamp_bomb_is_refused_at_once(tmp_path):
    path = sparse_video(tmp_path / "bomb.mkv", 3 * 3600 + 59 * 60)
    rejected(VideoTooLongError, "bomb.mkv", "header declares 3 h 59 min", "max_duration", video=path)
    rejected(VideoTooLongError, "bomb.mkv", "max_duration=60", video=path, max_duration=60)
    # Where no length is declared (MPEG-TS), a gap of hours between two frames is a damaged timestamp.
    with av.open(path) as source, av.open(str(tmp_path / "bomb.ts"), "w", format="mpegts") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.size:
                packet.stream = stream
                target.mux(packet)
    rejected(VideoDecodeError, "bomb.ts", "timestamps jump", video=str(tmp_path / "bomb.ts"), max_duration=None)


def reference_frame_count(path, output) -> int:
    """Frames of the reference's ffmpeg command line's re-encoding of `path`."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(path)]
    command += ["-filter:v", "fps=6", "-b:v", "8000k", "-c:v", "mpeg4", "-f", "rawvideo", str(output)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    with av.open(str(output), format="m4v") as container:
        return sum(1 for _ in container.decode(video=0))


def test_recordings_joined_end_to_end_are_read_as_the_command_line_reads_them(tmp_path):
    """`cat a.ts b.ts`: the continuity counters break at the seam and the clock restarts; both halves are kept."""
    h264 = open(tiny_video(tmp_path / "h264.ts", seconds=5, options={"threads": "1", "bframes": "2"}), "rb").read()
    for name, data in [("mpeg2.ts", ts_segment(5.0) + ts_segment(5.0, shift=3)), ("h264_b_frames.ts", h264 * 2)]:
        path = tmp_path / name
        path.write_bytes(data)
        assert reference_frame_count(path, tmp_path / "reference.m4v") >= 59
        with VideoClipReader(str(path), max_clips=None) as reader:
            assert reader.info.num_frames == reference_frame_count(path, tmp_path / "reference.m4v")
    # A packet lost in the middle of one recording (no jump of the clock after it) is still damage.
    data = ts_segment(5.0)
    video_packets = [
        start for start in range(0, len(data), 188) if ((data[start + 1] & 0x1F) << 8 | data[start + 2]) == 0x100
    ]
    lost = video_packets[len(video_packets) // 2]
    damaged = tmp_path / "lost_packet.ts"
    damaged.write_bytes(data[:lost] + data[lost + 188 :])
    rejected(VideoDecodeError, "lost_packet.ts", "incomplete or damaged", video=str(damaged))


def test_max_duration_bounds_long_videos(tmp_path):
    path = tiny_video(tmp_path / "ten_seconds.mp4", seconds=10)
    rejected(VideoTooLongError, "header declares 10.0 s", "max_duration=5", video=path, max_duration=5)
    with VideoClipReader(path, max_duration=10.5) as reader:
        assert reader.info.num_frames == 60
    # A stream without a declared length stops while it is read.
    with open(path, "rb") as file:
        raw = tmp_path / "raw.h264"
        with av.open(file) as source, av.open(str(raw), "w", format="h264") as target:
            stream = target.add_stream_from_template(source.streams.video[0])
            for packet in source.demux(video=0):
                if packet.size:
                    packet.stream = stream
                    target.mux(packet)
    rejected(VideoTooLongError, "holds more than", video=str(raw), max_duration=5)


def test_timestamps_that_restart_are_joined_as_ffmpegs_command_line_does(tmp_path):
    """Two recordings joined end to end: the command line's discontinuity correction keeps both halves."""
    path = tmp_path / "restart.ts"
    path.write_bytes(join_ts([ts_segment(5.0), ts_segment(5.0, shift=3)]))
    reference_frames = reference_frame_count(path, tmp_path / "reference.m4v")
    assert reference_frames >= 59  # both halves, not the 30 frames of the first one
    with VideoClipReader(str(path), max_clips=None) as reader:
        assert reader.info.num_frames == reference_frames
        assert len(list(reader)) == len(reader.info.clip_starts) >= 2


def test_frames_too_large_for_mpeg4_are_refused(tmp_path):
    path = tmp_path / "tall.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 16384, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16384, 1920, 3), np.uint8), format="rgb24")
        for _ in range(10):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    rejected(UnsupportedVideoError, "tall.avi", "1920x16384", "8191", "scale", video=str(path))


def test_extreme_aspect_ratios_within_the_limit_work(tmp_path):
    path = make_sample_video(tmp_path / "wide.mkv", width=8000, height=2, seconds=2, fps=6, codec="mpeg4")
    with VideoClipReader(path) as reader:
        clip = next(iter(reader))
    assert clip.keyframe.shape == (2, 8000, 3) and clip.motion_vectors.shape == (2, 24, 20, 36)


# -------------------------------------------------------------------------------------------- temporary space
@pytest.fixture
def small_temporary_folder(tmp_path, monkeypatch):
    """A 32 MiB tmpfs as the temporary folder, where mounting is allowed; otherwise a folder whose reported free
    space is 32 MiB."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        real = packet_spool.shutil.disk_usage

        def disk_usage(path):
            usage = real(path)
            return type(usage)(32 * 2**20, usage.used, 32 * 2**20) if str(path).startswith(str(folder)) else usage

        monkeypatch.setattr(packet_spool.shutil, "disk_usage", disk_usage)
    monkeypatch.setattr(packet_spool.tempfile, "tempdir", str(folder))
    yield folder
    if mounted.returncode == 0:
        subprocess.run(["umount", str(folder)], check=True)


def test_no_room_in_the_temporary_folder_is_reported_before_any_work(tmp_path, small_temporary_folder):
    # 1000 s of 720p, at least 170 MB of MPEG-4 by its declared length (two frames here, so it is quick to make).
    path = sparse_video(tmp_path / "long.mkv", 1000, size=(1280, 720))
    message = rejected(OutputError, "long.mkv", "temporary space", str(small_temporary_folder), "TMPDIR", video=path)
    assert "free" in message
    with VideoClipReader(tiny_video(tmp_path / "short.mp4", seconds=2)) as reader:  # 2 MB fits
        assert len(list(reader)) == 1
    assert os.listdir(small_temporary_folder) == []  # the spool has no name on disk


def test_a_temporary_folder_that_fills_up_while_writing_stops_cleanly(tmp_path, monkeypatch):
    real = packet_spool.tempfile.TemporaryFile

    class FillingFile:
        """A temporary file on a disk that is full after 20 kB."""

        def __init__(self):
            self.file, self.size = real(), 0

        def write(self, data):
            if self.size + len(data) > 20_000:
                raise OSError(28, "No space left on device")
            self.size += len(data)
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

    monkeypatch.setattr(packet_spool.tempfile, "TemporaryFile", FillingFile)
    path = tiny_video(tmp_path / "video.mp4", seconds=8)
    rejected(OutputError, "video.mp4", "is full", "TMPDIR", video=path)


# ------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ({"motion_std": (0.0, 0.0)}, "motion_std"),
        ({"motion_std": (float("nan"), 0.1)}, "motion_std"),
        ({"motion_scale": 0}, "motion_scale"),
        ({"fps": 0}, "fps"),
        ({"num_frames": 1}, "num_frames"),
        ({"max_clips": 0}, "max_clips"),
        ({"max_clips": -3}, "max_clips"),
        ({"encoder_threads": 0}, "encoder_threads"),
        ({"encoder_threads": 17}, "encoder_threads"),
        ({"bit_rate": -1}, "bit_rate"),
        ({"grid_size": (0, 36)}, "grid height"),
        ({"max_duration": -1}, "max_duration"),
        ({"num_frames": 10**9}, "num_frames must be at most"),
        ({"grid_size": (10**5, 10**5)}, "grid height must be at most"),
        ({"grid_size": (n for n in (20, 36))}, "grid size must be"),
        ({"fps": 1000}, "fps must be at most"),
        ({"bit_rate": 2**63}, "bit_rate must be at most"),
        ({"motion_std": 0.1}, "motion_std must hold"),
    ],
)
def test_impossible_reader_settings_are_refused(tmp_path, setting, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        VideoClipReader(b"not read", **setting)


def test_impossible_processor_settings_are_refused_when_made_and_loaded(tmp_path):
    with pytest.raises(InvalidInputError, match="motion_std"):
        VideoLaVITVideoProcessor(motion_std=[0.0, 0.0])
    with pytest.raises(InvalidInputError, match="keyframe height"):
        VideoLaVITVideoProcessor(size={"height": 0, "width": 224})
    processor = VideoLaVITVideoProcessor()
    processor.save_pretrained(tmp_path / "processor")
    config = tmp_path / "processor" / "video_preprocessor_config.json"
    config.write_text(config.read_text().replace('"motion_scale": 10.0', '"motion_scale": 0.0'))
    with pytest.raises(InvalidInputError, match="video_preprocessor_config.json.*|motion_scale"):
        VideoLaVITVideoProcessor.from_pretrained(tmp_path / "processor")
    with pytest.raises(InvalidInputError, match="motion_std"):
        processor(tiny_video(tmp_path / "v.mp4"), motion_std=[0.0, 0.1])


def test_settings_that_overflow_are_refused(tmp_path):
    path = tiny_video(tmp_path / "v.mp4", seconds=5)
    with pytest.raises(InvalidInputError, match="non-finite motion"):
        list(VideoClipReader(path, motion_std=(1e-300, 1e-300)))
    for settings, fragment in [
        ({"resample": 99}, "resample"),
        ({"image_mean": ["abc", 0, 0]}, "image_mean"),
        ({"image_std": [1e-40, 1, 1]}, "image_std"),
        ({"size": {"height": 10**5, "width": 10**5}}, "keyframe height"),
    ]:
        with pytest.raises(InvalidInputError, match=fragment):
            VideoLaVITVideoProcessor(**settings)


def test_damaged_processor_folders_are_the_packages_errors(tmp_path):
    from video_lavit.errors import CheckpointLoadError

    folder = tmp_path / "processor"
    VideoLaVITVideoProcessor().save_pretrained(folder)
    config = folder / "video_preprocessor_config.json"
    for text, error in [("[]", InvalidInputError), ("{not json", CheckpointLoadError)]:
        config.write_text(text)
        with pytest.raises(error):
            VideoLaVITVideoProcessor.from_pretrained(folder)
    with pytest.raises(CheckpointLoadError, match="no such folder"):
        VideoLaVITVideoProcessor.from_pretrained(tmp_path / "missing")


def test_reencode_false_times_clips_of_variable_frame_rate_videos(tmp_path):
    path = tmp_path / "vfr.mkv"
    pts = [0]
    for index in range(1, 150):
        pts.append(pts[-1] + (40 if index < 75 else 200))  # 25 fps, then 5 fps
    frames = sample_video_frames(64, 48, len(pts))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"threads": "1"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size, stream.codec_context.max_b_frames = 12, 0
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for array, timestamp in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = timestamp, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with VideoClipReader(str(path), reencode=False, max_clips=None) as reader:
        clips = list(reader)
    times = [clip.start_time for clip in clips]
    expected = [pts[clip.start_frame] / 1000 for clip in clips]
    assert times == pytest.approx(expected, abs=1e-6) and times[-1] > clips[-1].start_frame / 25 + 1


def test_one_processor_shared_by_four_threads_gives_the_same_outputs(tmp_path):
    processor = VideoLaVITVideoProcessor(max_clips=2)
    videos = [
        tiny_video(tmp_path / f"v{index}.mp4", seconds=5, seed=index, shift=(index % 3, 1)) for index in range(8)
    ]
    alone = [processor(video) for video in videos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(processor, videos))
    for single, threaded in zip(alone, together, strict=True):
        for key in ("keyframe_pixel_values", "motion_vectors", "num_clips"):
            assert torch.equal(single[key], threaded[key])


def test_bad_inputs_raise_only_the_packages_errors(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    for video in [str(tmp_path / "still.png"), b"\x00" * 100, io.BytesIO(b"RIFF" + b"\x00" * 60), {"bytes": b""}]:
        with pytest.raises(VideoLaVITError):
            VideoClipReader(video).close()
