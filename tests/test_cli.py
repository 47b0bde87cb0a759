import os
import subprocess
import sys

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
