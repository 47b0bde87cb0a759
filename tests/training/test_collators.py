"""Collators: sequence layout, label masks, the seeded order, padding, and cutting only at clip boundaries."""

import pytest
import torch
from tiny_data import prepared_row
from tiny_tokenizer import TINY_LAYOUT, build_tiny_video_lavit_tokenizer

from video_lavit import VideoLaVITProcessor, VideoLaVITVideoProcessor
from video_lavit.errors import InvalidInputError
from video_lavit.training import IGNORE_INDEX, VideoLaVITInstructionCollator, VideoLaVITPretrainingCollator

LAYOUT = TINY_LAYOUT


@pytest.fixture(scope="module")
def processor():
    return VideoLaVITProcessor(
        build_tiny_video_lavit_tokenizer(), VideoLaVITVideoProcessor(size={"height": 32, "width": 32})
    )


def spans(ids, start_id, end_id):
    found, current = [], None
    for token_id in ids:
        if token_id == start_id:
            current = []
        elif token_id == end_id:
            found.append(current)
            current = None
        elif current is not None:
            current.append(token_id)
    return found


def test_pretraining_layout_order_and_labels(processor):
    collator = VideoLaVITPretrainingCollator(processor, seed=3)
    rows = [prepared_row(f"s{index}", seed=index) for index in range(40)]
    orders = [collator.media_first(row) for row in rows]
    assert 10 < sum(orders) < 30  # both orders are drawn
    assert orders == [VideoLaVITPretrainingCollator(processor, seed=3).media_first(row) for row in rows]  # seeded
    assert orders != [VideoLaVITPretrainingCollator(processor, seed=4).media_first(row) for row in rows]
    assert not any(VideoLaVITPretrainingCollator(processor, media_first_probability=0.0).media_first(r) for r in rows)

    batch = collator(rows[:4])
    text_ids = processor.tokenizer("A man is riding a bicycle.", add_special_tokens=False)["input_ids"]
    for index, row in enumerate(rows[:4]):
        length = int(batch["attention_mask"][index].sum())
        ids = batch["input_ids"][index, :length].tolist()
        assert batch["attention_mask"][index, :length].all()  # right padding
        assert (batch["labels"][index, length:] == IGNORE_INDEX).all()
        assert batch["labels"][index, :length].tolist() == ids  # every position is a target
        assert ids[0] == processor.tokenizer.bos_token_id and ids[-1] == processor.tokenizer.eos_token_id
        keyframes = spans(ids, LAYOUT.image_start_id, LAYOUT.image_end_id)
        motions = spans(ids, LAYOUT.motion_start_id, LAYOUT.motion_end_id)
        assert [[code - LAYOUT.visual_code_offset for code in span] for span in keyframes] == row["keyframe_codes"]
        assert [[code - LAYOUT.motion_code_offset for code in span] for span in motions] == row["motion_codes"]
        body = ids[1:-1]
        if orders[index]:
            assert body[-len(text_ids) :] == text_ids and body[0] == LAYOUT.image_start_id
        else:
            assert body[: len(text_ids)] == text_ids and body[-1] == LAYOUT.motion_end_id


def test_pretraining_cuts_clips_drops_and_mixes_text(processor):
    row = prepared_row("long", clips=3)
    full = VideoLaVITPretrainingCollator(processor)([row])["input_ids"].shape[1]
    clip_length = 2 + 135 + 2  # markers and motion codes, plus at least two keyframe codes
    collator = VideoLaVITPretrainingCollator(processor, max_length=full - 1)
    ids = collator([row])["input_ids"][0].tolist()
    assert len(spans(ids, LAYOUT.motion_start_id, LAYOUT.motion_end_id)) == 2  # the last clip went, whole
    assert ids.count(LAYOUT.image_start_id) == ids.count(LAYOUT.image_end_id) == 2

    tiny = VideoLaVITPretrainingCollator(processor, max_length=clip_length)
    assert not tiny.fits(row) and tiny.fits(prepared_row("text", media="text")) and tiny.dropped == 0
    batch = tiny([row, prepared_row("text", media="text", text="Two dogs are playing with a red ball.")])
    assert tiny.dropped == 1 and batch["input_ids"].shape[0] == 1  # the video did not fit with one clip
    with pytest.raises(InvalidInputError, match="longer than max_length"):
        tiny([row])
    # Plain text is cut anywhere.
    short = VideoLaVITPretrainingCollator(processor, max_length=8)([prepared_row("t", media="text")])
    assert short["input_ids"].shape == (1, 8)

    left = VideoLaVITPretrainingCollator(processor, padding_side="left", pad_to_multiple_of=64)
    batch = left([prepared_row("a"), prepared_row("b", media="image")])
    assert batch["input_ids"].shape[1] % 64 == 0
    assert batch["attention_mask"][:, -1].all() and not batch["attention_mask"][1, 0]


def conversation(*pairs):
    turns = []
    for index, (question, answer) in enumerate(pairs):
        turns.append({"from": "human", "value": ("<video>\n" if index == 0 else "") + question})
        turns.append({"from": "gpt", "value": answer})
    return turns


def test_instruction_labels_only_assistant_replies(processor):
    collator = VideoLaVITInstructionCollator(processor)
    row = prepared_row("c", conversations=conversation(("What colour is the car?", "blue"), ("Is it moving?", "yes")))
    batch = collator([row])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    supervised = [token for token, label in zip(ids, labels) if label != IGNORE_INDEX]
    decoded = processor.tokenizer.decode(supervised)
    assert "blue" in decoded and "yes" in decoded
    assert "colour" not in decoded and "USER" not in decoded and "ASSISTANT" not in decoded
    assert supervised.count(processor.tokenizer.eos_token_id) == 2  # each reply ends with </s>
    media = {LAYOUT.image_start_id, LAYOUT.image_end_id, LAYOUT.motion_start_id, LAYOUT.motion_end_id}
    for token, label in zip(ids, labels):
        if token in media or token >= LAYOUT.visual_code_offset:
            assert label == IGNORE_INDEX

    # The same ids as the processor builds at inference for the same conversation.
    messages = collator.messages(row)
    text = processor.apply_chat_template(messages, tokenize=False)
    expected = processor(
        text=text,
        videos={
            "keyframe_pixel_values": torch.zeros(2, 3, 32, 32),
            "motion_vectors": torch.zeros(2, 2, 24, 20, 36),
            "num_clips": torch.tensor([2]),
        },
        keyframe_tokens=_codes_as_tokens(row),
        motion_codes=torch.tensor(row["motion_codes"]),
        return_tensors=None,
        padding=False,
    )["input_ids"][0]
    assert ids == expected


def _codes_as_tokens(row):
    from video_lavit import VideoLaVITKeyframeTokens

    codes = row["keyframe_codes"]
    return VideoLaVITKeyframeTokens(
        token_counts=torch.tensor([len(part) for part in codes]),
        codes=torch.tensor([c for part in codes for c in part]),
    )


def test_instruction_features_and_images(processor):
    collator = VideoLaVITInstructionCollator(processor, padding_side="left", system_prompt="You answer briefly.")
    rows = [
        prepared_row("f", keyframe_input="features", conversations=conversation(("What moves?", "the car"))),
        prepared_row(
            "i",
            media="image",
            keyframe_input="features",
            conversations=[{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "a dog"}],
        ),
    ]
    batch = collator(rows)
    expected = sum(len(part) for row in rows for part in row["keyframe_features"])
    assert batch["keyframe_features"].shape == (expected, 32)
    assert int((batch["input_ids"] == LAYOUT.image_token_id).sum()) == expected
    order = torch.cat([torch.tensor(part) for row in rows for part in row["keyframe_features"]])
    torch.testing.assert_close(batch["keyframe_features"], order)
    assert processor.tokenizer.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()]).count("briefly") == 1

    with pytest.raises(InvalidInputError, match="gpt reply"):
        collator([prepared_row("q", conversations=[{"from": "human", "value": "<video>\nHi"}])])
    with pytest.raises(InvalidInputError, match="Instruction|conversation"):
        VideoLaVITPretrainingCollator(processor)([rows[0]])
    with pytest.raises(InvalidInputError, match="padding_side"):
        VideoLaVITInstructionCollator(processor, padding_side="middle")
