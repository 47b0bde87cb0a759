"""Reconstruction metrics: PSNR / SSIM / EPE / code usage on known inputs, and the evaluator on world videos with
a broken file among them (recorded, the rest goes on, a rerun resumes)."""

import json
import math

import pytest
import torch

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.cli import main as cli_main
from video_lavit.evaluation import evaluate_reconstruction, psnr, ssim
from video_lavit.evaluation.reconstruction import code_usage, list_videos, motion_end_point_error
from video_lavit.processing.motion_vectors import MOTION_VECTOR_STD
from video_lavit.training.world import world_dataset
from video_lavit.world_model import world_model_path


def test_image_metrics_on_known_inputs():
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 3, 32, 32, generator=generator)
    assert torch.all(psnr(frames, frames) == 100) and torch.allclose(ssim(frames, frames), torch.ones(3))
    assert torch.allclose(psnr(torch.full((1, 3, 16, 16), 0.6), torch.full((1, 3, 16, 16), 0.5)), torch.tensor(20.0))
    noisy = (frames + 0.1 * torch.randn(frames.shape, generator=generator)).clamp(0, 1)
    assert torch.all(ssim(noisy, frames) < 0.95) and torch.all(ssim(noisy, frames) > 0)
    # Constant images: SSIM is the luminance term alone, (2 a b + C1) / (a^2 + b^2 + C1).
    a, b = 0.3, 0.5
    expected = (2 * a * b + 0.01**2) / (a * a + b * b + 0.01**2)
    value = ssim(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b))
    assert value.item() == pytest.approx(expected, rel=1e-3)  # float32 variances of a constant are ~1e-8, not 0


def test_motion_error_in_pixels_and_code_usage():
    target = torch.zeros(2, 24, 20, 36)
    reconstructed = target.clone()
    reconstructed[0] = 1.0  # one grid unit in x: std_x / 10 of the frame width
    error = motion_end_point_error(reconstructed, target, MOTION_VECTOR_STD, width=640, height=360)
    assert torch.allclose(error, torch.full_like(error, MOTION_VECTOR_STD[0] / 10 * 640))
    reconstructed[1] = 1.0
    error = motion_end_point_error(reconstructed, target, MOTION_VECTOR_STD, width=640, height=360)
    expected = math.hypot(MOTION_VECTOR_STD[0] / 10 * 640, MOTION_VECTOR_STD[1] / 10 * 360)
    assert error[0, 0, 0].item() == pytest.approx(expected, rel=1e-6)
    usage = code_usage({1: 5, 2: 5, 3: 5, 4: 5}, 16)
    assert usage["usage"] == 0.25 and usage["perplexity"] == pytest.approx(4.0)
    assert code_usage({7: 9}, 16)["perplexity"] == pytest.approx(1.0)


def test_reconstruction_of_world_videos(tmp_path, capsys):
    path = world_model_path()
    model = VideoLaVITForConditionalGeneration.from_pretrained(path).eval()
    processor = VideoLaVITProcessor.from_pretrained(path)
    world_dataset(3, tmp_path / "videos", seed=5, split="reconstruction")
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video")
    videos = list_videos(tmp_path / "videos")
    results = evaluate_reconstruction(model, processor, videos, tmp_path / "out", progress=False)
    metrics = results["metrics"]
    assert metrics["videos"] == {"done": 3, "errors": 1}
    motion = metrics["motion"]
    assert motion["clips"] == 3 and motion["points"] == 3 * 2 * 0 + 3 * 24 * 20 * 36
    assert 0 <= motion["epe"] < 5 and 0 <= motion["px1"] <= motion["px3"] <= motion["px5"] <= 1
    assert metrics["motion_codes"]["codebook_size"] == model.config.motion_tokenizer_config.codebook_size
    assert 0 < metrics["keyframe_codes"]["usage"] <= 1 and metrics["keyframe_codes"]["perplexity"] >= 1
    records = [json.loads(line) for line in (tmp_path / "out" / "per_video.jsonl").read_text().splitlines()]
    assert [record for record in records if "error" in record][0]["video"].endswith("broken.mp4")

    # A rerun does only the videos that failed; on the command line too.
    assert cli_main(["evaluate", "reconstruction", "--video-dir", str(tmp_path / "videos"), "--output",
                     str(tmp_path / "out"), "-q"]) == 0  # fmt: skip
    assert "motion: epe" in capsys.readouterr().out
    again = [json.loads(line) for line in (tmp_path / "out" / "per_video.jsonl").read_text().splitlines()]
    assert again[:4] == records and len(again) == 5 and "error" in again[-1]
    assert cli_main(["evaluate", "reconstruction", "--video-dir", str(tmp_path / "none"), "--output",
                     str(tmp_path / "x"), "-q"]) == 1  # fmt: skip
    assert "no such folder" in capsys.readouterr().err
