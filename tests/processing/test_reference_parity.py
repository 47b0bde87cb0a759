"""Bit-exact parity with the reference preprocessing on stored outputs.

The fixtures in tests/fixtures/reference/ were made by running the reference's `LaVITEvalVideoProcessor`
(max_clips=16; ffmpeg 5.1 command line on a 2-core machine, so the MPEG-4 encoder ran with 3 threads) on three small
procedural videos; tests/fixtures/reference/README.md says exactly how.
"""

import hashlib
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open

from video_lavit import VideoClipReader, VideoLaVITVideoProcessor

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "reference")
STEMS = ["ref_h264_96x56_25fps", "ref_mpeg4_34x18_2997fps", "ref_rot90_64x48_25fps"]


def load_reference(stem):
    with safe_open(os.path.join(REFERENCE, f"{stem}.safetensors"), "pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()


@pytest.mark.parametrize("stem", STEMS)
def test_matches_reference_bit_for_bit(stem):
    reference, metadata = load_reference(stem)
    with VideoClipReader(os.path.join(REFERENCE, f"{stem}.mp4"), encoder_threads=3) as reader:
        frame_types = "".join(
            "I" if index in set(reader.info.intra_frames) else "P" for index in range(reader.info.num_frames)
        )
        assert frame_types == "".join(chr(code) for code in reference["frame_types"].tolist())
        assert (reader.info.width, reader.info.height) == (
            int(metadata["reencoded_width"]),
            int(metadata["reencoded_height"]),
        )
        assert reader.info.clip_starts == reference["keyframe_start_indices"].tolist()
        clips = list(reader)

    motion = torch.stack([clip.motion_vectors for clip in clips])
    assert motion.dtype == torch.float32
    assert torch.equal(motion, reference["motion_vectors"])
    for clip, keyframe in zip(clips, reference["keyframe_rgb"]):
        np.testing.assert_array_equal(clip.keyframe, keyframe.numpy())

    processor = VideoLaVITVideoProcessor(encoder_threads=3)
    batch = processor(os.path.join(REFERENCE, f"{stem}.mp4"), return_tensors="pt")
    assert torch.equal(batch["motion_vectors"], reference["motion_vectors"])
    digest = hashlib.sha256(batch["keyframe_pixel_values"].contiguous().numpy().tobytes()).hexdigest()
    assert digest == metadata["keyframe_sha256"]


def test_encoder_thread_count_changes_vectors():
    """The reason `encoder_threads` is a setting: ffmpeg's slice count changes the motion vectors."""
    reference, _ = load_reference(STEMS[0])
    with VideoClipReader(os.path.join(REFERENCE, f"{STEMS[0]}.mp4"), encoder_threads=1) as reader:
        motion = torch.stack([clip.motion_vectors for clip in reader])
    assert motion.shape == reference["motion_vectors"].shape
    assert not torch.equal(motion, reference["motion_vectors"])
