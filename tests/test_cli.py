import os
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from video_lavit.cli import main


def test_tokenize_default_sample(tmp_path, capsys):
    assert main(["tokenize", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "video_lavit_sample.mp4" in out and "clips" in out
    with safe_open(tmp_path / "video_lavit_sample.safetensors", "pt") as handle:
        assert handle.get_tensor("motion_vectors").shape == (4, 2, 24, 20, 36)
        assert handle.get_tensor("keyframe_pixel_values").shape == (4, 3, 224, 224)
        assert handle.get_tensor("clip_start_frames").tolist() == [12, 36, 60, 84]
        assert handle.metadata()["num_frames"] == "120"
    assert os.path.getsize(tmp_path / "video_lavit_sample.png") > 1000


def test_tokenize_bad_input_exits_non_zero_with_one_line(tmp_path, sample_video):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video")
    result = subprocess.run(
        [sys.executable, "-m", "video_lavit.cli", "tokenize", "-q", "-o", str(tmp_path), str(bad), sample_video],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "notes.mp4" in errors[0]
    assert (tmp_path / "sample.safetensors").exists()  # the good video is still processed


def test_tokenize_with_motion_tokenizer(tmp_path, sample_video):
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "reference", "motion_tokenizer")
    converted = tmp_path / "motion_tokenizer"
    checkpoint = os.path.join(fixture, "tiny_motion_tokenizer.bin")
    assert (
        main(
            [
                "convert",
                "motion-tokenizer",
                "--checkpoint",
                checkpoint,
                "--output",
                str(converted),
                "--num-attention-heads",
                "2",
            ]
        )
        == 0
    )
    output = tmp_path / "out"
    assert main(["tokenize", "-q", "-o", str(output), "--motion-tokenizer", str(converted), sample_video]) == 0
    with safe_open(output / "sample.safetensors", "pt") as handle:
        token_ids = handle.get_tensor("motion_token_ids")
        assert token_ids.shape == (2, 135) and token_ids.dtype == torch.long
        assert 0 <= int(token_ids.min()) and int(token_ids.max()) < 64
    one_at_a_time = tmp_path / "one"
    arguments = ["tokenize", "-q", "-o", str(one_at_a_time), "--motion-tokenizer", str(converted), sample_video]
    assert main([*arguments, "--motion-batch-size", "1"]) == 0
    with safe_open(one_at_a_time / "sample.safetensors", "pt") as handle:
        assert torch.equal(handle.get_tensor("motion_token_ids"), token_ids)
    with pytest.raises(SystemExit) as refused:
        main([*arguments, "--motion-batch-size", "0"])
    assert refused.value.code == 2
    from video_lavit import InvalidInputError
    from video_lavit.processing.clip_export import tokenize_motion

    with pytest.raises(InvalidInputError, match="at least 1"):
        tokenize_motion(None, torch.zeros(1, 2, 24, 20, 36), batch_size=0)
    from PIL import Image

    sheet = Image.open(output / "sample.png")
    plain = tmp_path / "plain"
    assert main(["tokenize", "-q", "-o", str(plain), sample_video]) == 0
    assert sheet.width > Image.open(plain / "sample.png").width  # the decoded motion is an extra column


def test_convert_reports_bad_checkpoint(tmp_path, capsys):
    assert (
        main(
            [
                "convert",
                "motion-tokenizer",
                "--checkpoint",
                str(tmp_path / "none.bin"),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "no such checkpoint" in capsys.readouterr().err
