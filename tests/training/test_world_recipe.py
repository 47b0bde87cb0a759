"""The world recipe trains a tiny Video-LaVIT from scratch with the package's own pipeline, and it learns.

prepare (motion grids) -> motion tokenizer -> prepare (tokens) -> pre-training -> LoRA instruction tuning -> merged
model saved with its processor -> held-out evaluation with the fixed-motion control. The learning test runs the
built-in world model's recipe (default settings, seed 0, half the training videos) and checks that held-out colour
questions (answered from the keyframe) and direction questions (answered from the motion alone: each training scene
moves in all 4 directions) are answered far above chance, and that direction falls to chance when every clip's
motion codes are replaced by one fixed clip's. The built-in model itself is checked on other held-out videos.
"""

import json
import subprocess
import sys

import pytest
import torch

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.errors import InvalidInputError, OutputError
from video_lavit.training.world import score_world_answer, world_dataset, world_questions
from video_lavit.training.world_recipe import REPORT_NAME, answer_world_questions, train_world_model
from video_lavit.world_model import world_model_path, world_model_report

# Held-out accuracy the learning test asks for, on 64 videos; chance is 25% (4 answers). With 128 training videos
# the recipe reaches colour 1.00 and direction 0.875; the shipped model (256) 0.98 and 0.95, checked below from its
# report.
LEARNED, CHANCE_MARGIN = 0.8, 0.45


@pytest.mark.slow
def test_the_world_model_learns_from_the_keyframe_and_from_the_motion(tmp_path):
    # The one command that makes the built-in model, in a process of its own, on half its training videos (128: 32
    # scenes in 4 directions) to keep the suite short. Under the 2-worker suite it runs on one OpenMP thread
    # (conftest.py): 3.6 minutes on a 2-core machine, with the same scores as on two threads. The corpora are
    # prepared in this process (a pool of 2 gives the same shards, tests/training/test_prepare.py, but costs its
    # start-up).
    command = [sys.executable, "-m", "video_lavit.cli", "train", "world", "--output", str(tmp_path / "model"),
               "--num_train", "128", "--num_proc", "1", "--quiet"]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.load(open(tmp_path / "model" / REPORT_NAME))
    accuracy, control = report["accuracy"], report["control_accuracy"]
    assert accuracy["colour"] >= LEARNED and accuracy["direction"] >= LEARNED, accuracy
    # (Shape is not learned at this size: a random keyframe encoder at 32 px hardly separates the shapes.)
    # Fixed motion codes: direction answers at chance, colour answers (from the keyframe) unchanged.
    assert control["direction"] <= CHANCE_MARGIN and control["colour"] >= LEARNED, control
    assert {"motion_tokenizer", "pretrain", "sft", "evaluate"} <= set(report["timings"])
    assert 0 < report["model_size_bytes"] < 10 * 2**20 and report["settings"]["seed"] == 0
    model = VideoLaVITForConditionalGeneration.from_pretrained(tmp_path / "model")
    VideoLaVITProcessor.from_pretrained(tmp_path / "model").check_layout(model)
    assert not any("lora" in name for name in model.state_dict())


def test_the_built_in_world_model_answers_new_videos(tmp_path):
    path = world_model_path()
    model = VideoLaVITForConditionalGeneration.from_pretrained(path).eval()
    processor = VideoLaVITProcessor.from_pretrained(path)
    shipped = world_model_report()
    assert shipped["accuracy"]["colour"] >= 0.9 and shipped["accuracy"]["direction"] >= 0.9
    # Videos of a split it never saw (neither its training nor its report's held-out split).
    rows = world_dataset(32, tmp_path / "videos", seed=5, split="check")
    clips = processor.video_processor(list(rows["video"]), return_tensors="pt")
    for kind in ("colour", "direction"):
        answers = answer_world_questions(model, processor, clips, world_questions()[kind].question)
        correct = sum(map(score_world_answer, [kind] * len(rows), answers, rows[kind]))
        assert correct >= 0.75 * len(rows), (kind, answers)
    # The motion path is used: one clip's motion codes for every video leave direction near chance.
    fixed = model.model.get_motion_codes(clips["motion_vectors"][:1]).expand(len(rows), -1)
    question = world_questions()["direction"].question
    answers = answer_world_questions(model, processor, clips, question, motion_codes=fixed)
    assert sum(map(score_world_answer, ["direction"] * len(rows), answers, rows["direction"])) <= 0.5 * len(rows)
    assert torch.equal(fixed[0], fixed[-1])


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    with pytest.raises(InvalidInputError, match="num_train"):
        train_world_model(tmp_path / "other", num_train=2)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "config.json").write_text("{}")
    with pytest.raises(OutputError, match="not empty"):
        train_world_model(tmp_path / "project")
    assert (tmp_path / "project" / "config.json").read_text() == "{}"
