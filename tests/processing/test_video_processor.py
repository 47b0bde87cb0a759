import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoVideoProcessor

import video_lavit
from video_lavit import VideoClipReader, VideoLaVITVideoProcessor, iter_video_clips
from video_lavit.processing import make_contact_sheet, motion_to_arrow_image, motion_to_hsv_image


def test_defaults_are_the_released_model():
    processor = VideoLaVITVideoProcessor()
    assert (processor.fps, processor.num_frames, processor.max_clips) == (6, 24, 16)
    assert (processor.size.height, processor.size.width) == (224, 224)
    assert processor.motion_grid_size == {"height": 20, "width": 36}
    assert list(processor.image_mean) == [0.48145466, 0.4578275, 0.40821073]


def test_outputs_shapes_and_counts(sample_video):
    processor = VideoLaVITVideoProcessor()
    with open(sample_video, "rb") as handle:
        data = handle.read()
    batch = processor([sample_video, data], return_tensors="pt")
    assert batch["num_clips"].tolist() == [2, 2]
    assert batch["keyframe_pixel_values"].shape == (4, 3, 224, 224)
    assert batch["motion_vectors"].shape == (4, 2, 24, 20, 36)
    assert batch["keyframe_pixel_values"].dtype == batch["motion_vectors"].dtype == torch.float32
    # Same video as path and as bytes: identical.
    torch.testing.assert_close(batch["motion_vectors"][:2], batch["motion_vectors"][2:], rtol=0, atol=0)
    torch.testing.assert_close(batch["keyframe_pixel_values"][:2], batch["keyframe_pixel_values"][2:], rtol=0, atol=0)
    # Batch equals single, and a second run is identical.
    single = processor(io.BytesIO(data), return_tensors="pt")
    assert torch.equal(single["motion_vectors"], batch["motion_vectors"][:2])
    numpy_batch = processor(sample_video, return_tensors="np")
    assert isinstance(numpy_batch["motion_vectors"], np.ndarray)


def test_keyframe_normalisation_is_the_two_step_clip_transform():
    processor = VideoLaVITVideoProcessor()
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    resized = np.asarray(Image.fromarray(image).resize((224, 224), Image.BICUBIC))
    expected = torch.from_numpy(resized.copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(processor.image_mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(processor.image_std, dtype=torch.float32)[:, None, None]
    assert torch.equal(processor.preprocess_keyframe(image), (expected - mean) / std)


def test_max_clips_and_options(sample_video):
    processor = VideoLaVITVideoProcessor(max_clips=1)
    assert processor(sample_video)["num_clips"].tolist() == [1]
    assert processor(sample_video, max_clips=None)["num_clips"].tolist() == [2]
    with pytest.raises(TypeError, match="unexpected"):
        processor(sample_video, max_clip=3)


def test_save_load_round_trip_and_auto_class(tmp_path, sample_video):
    processor = VideoLaVITVideoProcessor(max_clips=3, encoder_threads=4)
    processor.save_pretrained(tmp_path)
    loaded = AutoVideoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, VideoLaVITVideoProcessor)
    assert loaded.to_dict() == processor.to_dict()
    assert torch.equal(loaded(sample_video)["motion_vectors"], processor(sample_video)["motion_vectors"])


def test_iterator_streams_clips(sample_video):
    clips = list(iter_video_clips(sample_video, max_clips=None))
    assert [clip.start_frame for clip in clips] == [12, 36]
    assert clips[0].start_time == pytest.approx(2.0)
    assert clips[0].keyframe.shape == (64, 96, 3) and clips[0].keyframe.dtype == np.uint8
    with VideoClipReader(sample_video) as reader:
        assert reader.info.num_frames == 60 and reader.info.intra_frames == [0, 12, 24, 36, 48]
        assert len(reader) == 2
    pairs = list(VideoLaVITVideoProcessor().iter_clips(sample_video))
    assert pairs[0][1].shape == (3, 224, 224)


def test_errors_are_exported():
    assert issubclass(video_lavit.VideoDecodeError, video_lavit.VideoLaVITError)
    assert issubclass(video_lavit.VideoDecodeError, ValueError)
    assert issubclass(video_lavit.UnsupportedVideoError, video_lavit.VideoLaVITError)
    with pytest.raises(video_lavit.VideoDecodeError):
        VideoLaVITVideoProcessor()([])


def test_motion_pictures(sample_video):
    clip = next(iter_video_clips(sample_video))
    summary = clip.motion_vectors[:, 1:].mean(dim=1)
    hsv = motion_to_hsv_image(summary, size=(72, 40))
    assert hsv.size == (72, 40) and hsv.mode == "RGB"
    arrows = motion_to_arrow_image(summary, clip.keyframe, size=(96, 64))
    assert arrows.size == (96, 64)
    assert (
        np.asarray(arrows).astype(int).sum()
        != np.asarray(Image.fromarray(clip.keyframe).resize((96, 64), Image.BICUBIC)).astype(int).sum()
    )
    sheet = make_contact_sheet([clip.keyframe], [clip.motion_vectors])
    assert sheet.height == 160 and sheet.width > 3 * 200
    # Uniform rightward motion is drawn red (hue 0) at full brightness.
    right = torch.zeros(2, 2, 2)
    right[0] = 1.0
    assert tuple(np.asarray(motion_to_hsv_image(right))[0, 0]) == (255, 0, 0)


def test_the_procedural_video_is_byte_identical_call_after_call(tmp_path):
    from video_lavit import make_sample_video

    written = [make_sample_video(width=64, height=48, seconds=2.0, seed=3) for _ in range(3)]
    assert all(isinstance(data, bytes) and data == written[0] for data in written)
    make_sample_video(tmp_path / "a.mp4", width=64, height=48, seconds=2.0, seed=3)
    make_sample_video(tmp_path / "b.mp4", width=64, height=48, seconds=2.0, seed=3)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
