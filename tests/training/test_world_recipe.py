"""The world recipe runs the package's whole training pipeline end to end, at a smoke-test size.

prepare (motion grids) -> motion tokenizer -> prepare (tokens) -> pre-training -> LoRA instruction tuning -> merged
model saved with its processor -> held-out evaluation with the fixed-motion control. The sizes here are too small to
learn anything; what is checked is that every stage hands the next what it needs and that the result loads.
"""

import json

import pytest

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.errors import InvalidInputError, OutputError
from video_lavit.training.world_recipe import REPORT_NAME, WorldModelSettings, train_world_model


@pytest.mark.slow
def test_every_stage_runs_and_the_result_loads(tmp_path):
    settings = WorldModelSettings(motion_steps=1, motion_batch_size=2, pretrain_epochs=1, sft_epochs=1, batch_size=4)
    report = train_world_model(tmp_path / "model", num_train=8, num_eval=4, seed=1, progress=False, settings=settings)
    assert set(report.accuracy) == set(report.control_accuracy) == {"colour", "shape", "direction"}
    assert all(0.0 <= value <= 1.0 for value in [*report.accuracy.values(), *report.control_accuracy.values()])
    assert {"motion_tokenizer", "pretrain", "sft", "evaluate"} <= set(report.timings)
    assert 0 < report.model_size_bytes < 10 * 2**20
    saved = json.load(open(tmp_path / "model" / REPORT_NAME))
    assert saved["accuracy"] == report.accuracy and saved["settings"]["seed"] == 1
    model = VideoLaVITForConditionalGeneration.from_pretrained(tmp_path / "model")
    processor = VideoLaVITProcessor.from_pretrained(tmp_path / "model")
    processor.check_layout(model)
    assert not any("lora" in name for name in model.state_dict())
    with pytest.raises(InvalidInputError, match="num_train"):
        train_world_model(tmp_path / "other", num_train=2)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "config.json").write_text("{}")
    with pytest.raises(OutputError, match="not empty"):
        train_world_model(tmp_path / "project")
    assert (tmp_path / "project" / "config.json").read_text() == "{}"
