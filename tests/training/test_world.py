"""Tests of the procedural world (`video_lavit.training.world`): videos, motion, dataset, scoring and tokenizer."""

import os
from collections import Counter

import numpy as np
import pytest
import torch

from video_lavit import VideoLaVITVideoProcessor
from video_lavit.errors import InvalidInputError
from video_lavit.media_tokenizers.token_layout import VIDEO_PLACEHOLDER, VideoLaVITTokenLayout
from video_lavit.processing.processing_video_lavit import ANSWER_SEPARATOR, DEFAULT_SYSTEM_PROMPT
from video_lavit.processing.tokenization_video_lavit import layout_from_tokenizer
from video_lavit.training import (
    WORLD_COLOURS,
    WORLD_DIRECTIONS,
    WORLD_SHAPES,
    WORLD_SPEEDS,
    WORLD_TEXT_VOCAB_SIZE,
    build_world_tokenizer,
    make_world_video,
    score_world_answer,
    world_dataset,
    world_questions,
    world_shape_positions,
    world_video_frames,
)
from video_lavit.training.world import WORLD_FRAME_SIZE, WORLD_NUM_FRAMES, WORLD_SHAPE_FRACTION

WORLD_LAYOUT = VideoLaVITTokenLayout(text_vocab_size=WORLD_TEXT_VOCAB_SIZE, num_visual_codes=16, num_motion_codes=16)


def test_same_seed_gives_the_same_video():
    first = make_world_video("green", "triangle", "up", "fast", seed=3)
    assert first == make_world_video("green", "triangle", "up", "fast", seed=3)
    assert first != make_world_video("green", "triangle", "up", "fast", seed=4)
    assert first[4:8] == b"ftyp"  # an mp4


def test_frames_keep_the_shape_inside_and_hide_the_direction_in_frame_zero():
    side = WORLD_FRAME_SIZE * WORLD_SHAPE_FRACTION
    first_frames = []
    for direction in WORLD_DIRECTIONS:
        for speed in WORLD_SPEEDS:
            positions = world_shape_positions(direction, speed, seed=11)
            assert positions.shape == (WORLD_NUM_FRAMES, 2)
            assert positions.min() >= 0 and positions.max() + side <= WORLD_FRAME_SIZE
            frames = world_video_frames("red", "circle", direction, speed, seed=11)
            assert frames.shape == (WORLD_NUM_FRAMES, WORLD_FRAME_SIZE, WORLD_FRAME_SIZE, 3)
            assert frames.dtype == np.uint8
            first_frames.append(frames[0])
    # The first frame (the clip's keyframe) is the same for every direction and speed.
    assert all(np.array_equal(first_frames[0], frame) for frame in first_frames)


def _shape_region_motion(motion_vectors: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    """Mean (x, y) of the motion grid `[2, 24, 20, 36]` over the cells the shape crosses, I-frames left out."""
    _, _, grid_height, grid_width = motion_vectors.shape
    side = WORLD_FRAME_SIZE * WORLD_SHAPE_FRACTION
    (left, top), (right, bottom) = positions.min(axis=0), positions.max(axis=0) + side
    rows = slice(int(top / WORLD_FRAME_SIZE * grid_height), int(np.ceil(bottom / WORLD_FRAME_SIZE * grid_height)))
    cols = slice(int(left / WORLD_FRAME_SIZE * grid_width), int(np.ceil(right / WORLD_FRAME_SIZE * grid_width)))
    predicted = torch.cat([motion_vectors[:, 1:12], motion_vectors[:, 13:]], dim=1)  # frames 0 and 12 are I-frames
    return predicted[:, :, rows, cols].mean(dim=(1, 2, 3))


def test_each_video_is_one_clip_whose_motion_follows_the_direction(tmp_path):
    processor = VideoLaVITVideoProcessor()
    strength, keyframes = {}, []
    for direction, (step_x, step_y) in WORLD_DIRECTIONS.items():
        for speed in WORLD_SPEEDS:
            path = make_world_video("blue", "cross", direction, speed, seed=5, path=tmp_path / f"{direction}.mp4")
            clips = list(processor.iter_clips(path))
            assert len(clips) == 1
            clip, keyframe = clips[0]
            assert (clip.start_frame, clip.num_valid_frames) == (0, WORLD_NUM_FRAMES)
            keyframes.append(keyframe)
            mean_x, mean_y = _shape_region_motion(clip.motion_vectors, world_shape_positions(direction, speed, 5))
            along = mean_x * step_x + mean_y * step_y
            across = abs(mean_x * step_y + mean_y * step_x)
            assert along > 0.1 and along > 3 * across, (direction, speed, mean_x, mean_y)
            strength[direction, speed] = along
    for direction in WORLD_DIRECTIONS:
        assert strength[direction, "fast"] > 1.3 * strength[direction, "slow"]
    # The keyframe the model sees says nothing about the direction.
    assert all(torch.equal(keyframes[0], keyframe) for keyframe in keyframes)
    batch = processor(path)
    assert batch["num_clips"].tolist() == [1]
    assert tuple(batch["motion_vectors"].shape) == (1, 2, 24, 20, 36)


def test_world_dataset_is_balanced_and_well_formed(tmp_path):
    train = world_dataset(16, tmp_path / "videos", seed=1)
    assert len(train) == 16
    assert set(train.column_names) >= {"id", "video", "colour", "shape", "direction", "speed", "caption"}
    for column, values, per_value in (
        ("colour", WORLD_COLOURS, 4),
        ("shape", WORLD_SHAPES, 4),
        ("direction", WORLD_DIRECTIONS, 4),
        ("speed", WORLD_SPEEDS, 8),
    ):
        assert Counter(train[column]) == {value: per_value for value in values}
    questions = world_questions()
    assert {kind: len(question.options) for kind, question in questions.items()} == {
        "colour": 4,
        "shape": 4,
        "direction": 4,
    }
    by_question = {question.question: question for question in questions.values()}
    for row in train:
        assert os.path.isfile(row["video"]) and row["id"].startswith("train-")
        speed_word = {"slow": "slowly", "fast": "quickly"}[row["speed"]]
        assert row["caption"] == f"a {row['colour']} {row['shape']} moves {row['direction']} {speed_word}."
        turns = row["conversations"]
        assert [turn["from"] for turn in turns] == ["human", "gpt"] * 3
        assert turns[0]["value"].startswith(f"{VIDEO_PLACEHOLDER}\n")
        assert sum(turn["value"].count(VIDEO_PLACEHOLDER) for turn in turns) == 1
        asked = [by_question[turn["value"].removeprefix(f"{VIDEO_PLACEHOLDER}\n")] for turn in turns[::2]]
        assert sorted(question.kind for question in asked) == sorted(questions)
        for question, reply in zip(asked, turns[1::2]):
            assert reply["value"] in question.options and reply["value"] == row[question.kind]

    # A rerun writes nothing new and gives the same rows; another split shares no video.
    written = {name: os.path.getmtime(tmp_path / "videos" / name) for name in os.listdir(tmp_path / "videos")}
    assert world_dataset(16, tmp_path / "videos", seed=1).to_list() == train.to_list()
    assert {name: os.path.getmtime(tmp_path / "videos" / name) for name in written} == written
    held_out = world_dataset(8, tmp_path / "videos", seed=1, split="test", num_turns=1)
    assert not set(held_out["video"]) & set(train["video"])
    assert not set(held_out["video_seed"]) & set(train["video_seed"])
    assert all(len(turns) == 2 for turns in held_out["conversations"])
    asked_kinds = Counter(by_question[turns[0]["value"].split("\n", 1)[1]].kind for turns in held_out["conversations"])
    assert sorted(asked_kinds.values()) == [2, 3, 3]  # one question each: the kinds take turns
    assert Counter(held_out["direction"]) == {direction: 2 for direction in WORLD_DIRECTIONS}


def test_score_world_answer_normalises_and_checks():
    assert score_world_answer("colour", " Red.", "red")
    assert score_world_answer("direction", "left \\n </s>", "left")
    assert not score_world_answer("direction", "right", "left")
    assert not score_world_answer("shape", "a square", "square")
    with pytest.raises(InvalidInputError, match="kind"):
        score_world_answer("size", "big", "big")
    with pytest.raises(InvalidInputError, match="options"):
        score_world_answer("colour", "left", "left")


def test_world_rejects_unknown_attributes():
    with pytest.raises(InvalidInputError, match="purple"):
        make_world_video("purple", "circle", "left")
    with pytest.raises(InvalidInputError, match="even"):
        world_video_frames("red", "circle", "left", size=33)
    with pytest.raises(InvalidInputError, match="num_samples"):
        world_dataset(0, "unused")


def test_world_tokenizer_round_trips_with_one_token_per_answer():
    tokenizer = build_world_tokenizer(WORLD_LAYOUT)
    assert len(tokenizer) == WORLD_LAYOUT.vocab_size + 2
    assert layout_from_tokenizer(tokenizer) == WORLD_LAYOUT
    assert (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.get_vocab() == build_world_tokenizer(WORLD_LAYOUT).get_vocab()  # deterministic
    for question in world_questions().values():
        for answer in question.options:
            assert len(tokenizer(answer, add_special_tokens=False).input_ids) == 1, answer
    text = (
        f"{DEFAULT_SYSTEM_PROMPT} USER: What colour is the shape? ASSISTANT: yellow{ANSWER_SEPARATOR}"
        "USER: Which way does the shape move? ASSISTANT:"
    )
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id and max(ids) < WORLD_TEXT_VOCAB_SIZE
    assert tokenizer.decode(ids[1:]) == text
    assert len(ids) < 60  # the template's fixed words are learned whole, not spelled out

    small = build_world_tokenizer(VideoLaVITTokenLayout(text_vocab_size=320, num_visual_codes=8, num_motion_codes=8))
    assert len(small) == 320 + 2 + 8 + 2 + 8 + 2
    assert small.decode(small(text).input_ids[1:]) == text


def test_scenes_in_every_direction(tmp_path):
    from video_lavit.training.world import WORLD_DIRECTIONS, world_dataset

    rows = world_dataset(8, tmp_path, seed=5, split="train", scenes_in_every_direction=True).to_list()
    for start in (0, 4):
        group = rows[start : start + 4]
        assert {row["direction"] for row in group} == set(WORLD_DIRECTIONS)
        for name in ("colour", "shape", "speed", "video_seed"):
            assert len({row[name] for row in group}) == 1, name
    assert rows[0]["video_seed"] != rows[4]["video_seed"]
