"""Leaving out the source frames the re-encoding drops changes no clip; a failed check falls back to full decoding."""

import av
import pytest
import torch

from video_lavit import VideoClipReader, make_sample_video
from video_lavit.processing import frame_skipping

pytestmark = pytest.mark.skipif("libx264" not in av.codecs_available, reason="needs libx264 for B-frames")


@pytest.fixture(scope="module")
def h264_video(tmp_path_factory):
    # libx264's default settings code B-frames as non-reference frames, the frames that skipping leaves out.
    path = tmp_path_factory.mktemp("skip") / "b_frames.mp4"
    make_sample_video(path, width=96, height=64, seconds=10.0, fps=25, shift=(2, 1), seed=3)
    return path


def read_clips(video):
    with VideoClipReader(video, max_clips=3, progress=False) as reader:
        return [(clip.start_frame, clip.keyframe.copy(), clip.motion_vectors.clone()) for clip in reader]


def assert_same_clips(first, second):
    assert len(first) == len(second) > 0
    for (start_a, keyframe_a, motion_a), (start_b, keyframe_b, motion_b) in zip(first, second):
        assert start_a == start_b
        assert (keyframe_a == keyframe_b).all()
        assert torch.equal(motion_a, motion_b)


def test_skipping_gives_the_clips_of_full_decoding(h264_video, monkeypatch):
    skipped = []
    original = frame_skipping.SourceFrameSkipper.before_decode

    def spy(self, packet):
        original(self, packet)
        skipped.append(packet.stream.codec_context.skip_frame)

    monkeypatch.setattr(frame_skipping.SourceFrameSkipper, "before_decode", spy)
    with_skipping = read_clips(str(h264_video))
    assert any(str(mode) != "DEFAULT" and "NONREF" in str(mode) for mode in skipped), "nothing was skipped"
    with open(h264_video, "rb") as file:  # a file object is read once: no skipping
        without = read_clips(file)
    assert_same_clips(with_skipping, without)


def test_a_failed_check_reads_the_video_again_without_skipping(h264_video, monkeypatch):
    reference = read_clips(str(h264_video))
    calls = []

    def fail(self):
        calls.append(1)
        raise frame_skipping.SkippingNotApplicable("forced")

    monkeypatch.setattr(frame_skipping.SourceFrameSkipper, "finish", fail)
    assert_same_clips(read_clips(str(h264_video)), reference)
    assert calls == [1]
