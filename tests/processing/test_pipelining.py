"""Decoding and encoding on threads (`pipelining`) changes no clip, raises what fails when its turn comes, and leaves
no thread behind."""

import gc
import threading
import time

import av
import pytest
import torch

from video_lavit import VideoClipReader, VideoLaVITVideoProcessor, make_sample_video
from video_lavit.errors import InvalidInputError, OutputError, VideoTooLongError
from video_lavit.processing import video_io
from video_lavit.processing.packet_spool import PacketSpool
from video_lavit.processing.pipelining import prefetch


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipelining") / "moving.mp4"
    make_sample_video(path, width=96, height=64, seconds=30.0, fps=25, shift=(2, 1), seed=5)
    return path


@pytest.fixture(scope="module")
def mpeg4_video(tmp_path_factory):
    # Read as it is (reencode=False), a keyframe every 12 frames gives several clips.
    path = tmp_path_factory.mktemp("pipelining") / "gop12.mp4"
    make_sample_video(path, width=96, height=64, seconds=30.0, fps=6, codec="mpeg4", options={"g": "12"}, seed=5)
    return path


@pytest.fixture
def three_workers(monkeypatch):
    # Three clips decoded ahead whatever the machine's cores.
    monkeypatch.setattr(video_io, "prefetch_workers", lambda: 3)


def read(video, **options):
    with VideoClipReader(video, progress=False, **options) as reader:
        return [(clip.start_frame, clip.keyframe.copy(), clip.motion_vectors.clone()) for clip in reader]


def assert_same_clips(first, second):
    assert len(first) == len(second)
    for (start_a, keyframe_a, motion_a), (start_b, keyframe_b, motion_b) in zip(first, second):
        assert start_a == start_b
        assert (keyframe_a == keyframe_b).all()
        assert torch.equal(motion_a, motion_b)


def pipeline_threads():
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("video-lavit-")]


@pytest.mark.parametrize("reencode", [True, False])
def test_threads_change_no_clip(video, mpeg4_video, reencode, three_workers, monkeypatch):
    video = video if reencode else mpeg4_video
    threads = {"append": set(), "decode": set()}
    append, decode_clip = PacketSpool.append, VideoClipReader.decode_clip

    def spy_append(self, packet):
        threads["append"].add(threading.current_thread().name)
        return append(self, packet)

    def spy_decode(self, start_frame):
        threads["decode"].add(threading.current_thread().name)
        return decode_clip(self, start_frame)

    monkeypatch.setattr(PacketSpool, "append", spy_append)
    monkeypatch.setattr(VideoClipReader, "decode_clip", spy_decode)
    one_thread = read(video, reencode=reencode, pipeline=False)
    assert threads == {"append": {"MainThread"}, "decode": {"MainThread"}}
    threads["append"].clear(), threads["decode"].clear()

    pipelined = read(video, reencode=reencode)
    assert len(one_thread) >= 5
    assert_same_clips(pipelined, one_thread)
    # The encoder wrote from its own thread; the clips were decoded on the workers.
    assert threads["append"] == ({"video-lavit-encoder"} if reencode else {"MainThread"})
    assert threads["decode"] and all(name.startswith("video-lavit-clips") for name in threads["decode"])
    assert not pipeline_threads()


def test_the_processor_s_pipeline_option(video, three_workers):
    processor = VideoLaVITVideoProcessor(max_clips=4)
    pipelined, one_thread = processor(str(video)), processor(str(video), pipeline=False)
    assert pipelined["num_clips"].item() == 4
    for name in ("keyframe_pixel_values", "motion_vectors"):
        assert torch.equal(pipelined[name], one_thread[name])


def test_a_failure_of_the_encoder_thread_is_raised_and_the_thread_ends(video, monkeypatch):
    append, calls = PacketSpool.append, []

    def fail_later(self, packet):
        calls.append(threading.current_thread().name)
        if len(calls) == 20:
            raise OutputError("the temporary folder is full")
        append(self, packet)

    monkeypatch.setattr(PacketSpool, "append", fail_later)
    with pytest.raises(OutputError, match="temporary folder is full"):
        VideoClipReader(video, progress=False)
    assert calls[-1] == "video-lavit-encoder" and len(calls) == 20  # the frames after the failure were dropped
    assert not pipeline_threads()


def test_a_failure_of_the_decoding_thread_stops_the_encoder_thread(video, monkeypatch):
    started = []

    class Recorded(video_io.EncoderThread):
        def __init__(self, encode):
            started.append(1)
            super().__init__(encode)

    monkeypatch.setattr(video_io, "EncoderThread", Recorded)
    # No declared length: the reader finds the video too long only while re-encoding it.
    monkeypatch.setattr(video_io, "_declared_seconds", lambda container, stream: None)
    with pytest.raises(VideoTooLongError, match="more than"):
        VideoClipReader(video, progress=False, max_duration=10.0)
    assert started == [1]
    assert not pipeline_threads()


def test_pipeline_must_be_true_or_false():
    with pytest.raises(InvalidInputError, match="pipeline must be True or False"):
        VideoClipReader(b"not read", pipeline="false")


def test_clips_after_the_reader_closes_are_refused(video, three_workers):
    reference = read(video, pipeline=False)
    reader = VideoClipReader(video, progress=False)
    clips = iter(reader)
    first = next(clips)
    reader.close()
    assert not pipeline_threads()  # closing stopped the clips being decoded ahead
    with pytest.raises(InvalidInputError, match="closed"):
        next(clips)
    assert_same_clips([(first.start_frame, first.keyframe, first.motion_vectors)], reference[:1])


def test_prefetch_keeps_the_order_and_raises_at_the_failing_item_s_turn():
    def work(item):
        time.sleep(0.002 * (5 - item % 5))  # later items finish first
        if item == 6:
            raise ValueError("item 6 failed")
        return item * 2

    results = []
    with pytest.raises(ValueError, match="item 6 failed"):
        for value in prefetch(work, range(10), 3):
            results.append(value)
    assert results == [0, 2, 4, 6, 8, 10]
    assert not pipeline_threads()


def test_leaving_a_prefetch_early_starts_no_more_work():
    started = []

    def work(item):
        started.append(item)
        return item

    results = prefetch(work, range(100), 3)
    assert next(results) == 0
    results.close()
    assert len(started) <= 4  # the first item and at most the three started ahead
    assert not pipeline_threads()


def test_decoded_frames_are_freed_without_the_cyclic_collector(video, three_workers):
    # Frames kept alive by reference cycles until the collector runs would add up to a clip's worth of frames for
    # each worker thread (tens of MB each at 720p).
    reader = VideoClipReader(video, progress=False)
    gc.collect()
    gc.disable()
    try:
        clips = list(reader)
        # Each clip's keyframe array is a view of its RGB frame; no decoded (YUV) frame may be left.
        alive = [item.format.name for item in gc.get_objects() if type(item) is av.VideoFrame]
    finally:
        gc.enable()
        reader.close()
    assert len(clips) >= 5 and [name for name in alive if name != "rgb24"] == [], alive
