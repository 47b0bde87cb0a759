"""`pipeline("video-text-to-text")` and `processor.apply_chat_template(..., tokenize=True)` with videos named in the
messages, on the built-in world model: right answers, batching, chat input, bad input."""

import pytest
import torch
from transformers import pipeline

from video_lavit import InvalidInputError, VideoLaVITForConditionalGeneration, VideoLaVITProcessor
from video_lavit.training.world import world_dataset
from video_lavit.video_text_to_text import VideoTextToTextPipeline
from video_lavit.world_model import world_model_path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    rows = world_dataset(3, tmp_path_factory.mktemp("videos"), seed=11, split="pipeline")
    return list(rows)


@pytest.fixture(scope="module")
def answer():
    return pipeline("video-text-to-text", model=world_model_path())


def test_pipeline_answers_batched_and_from_chats(answer, videos):
    assert isinstance(answer, VideoTextToTextPipeline)
    calls = []
    generate = answer.model.generate
    answer.model.generate = lambda **kwargs: calls.append(kwargs["input_ids"].shape[0]) or generate(**kwargs)
    try:
        [reply] = answer(videos=videos[0]["video"], text="What colour is the shape?")
        assert reply["generated_text"] == videos[0]["colour"]
        replies = answer(videos=[row["video"] for row in videos], text=["What colour is the shape?"] * 3,
                         batch_size=2, max_new_tokens=4)  # fmt: skip
        assert calls == [1, 2, 1]  # one generate per batch
        assert [reply[0]["generated_text"] for reply in replies] == [row["colour"] for row in videos]
    finally:
        answer.model.generate = generate
    chat = [{"role": "user", "content": [{"type": "video", "path": videos[1]["video"]},
                                         {"type": "text", "text": "Which way does the shape move?"}]}]  # fmt: skip
    [reply] = answer(chat)
    assert reply["generated_text"] == videos[1]["direction"]
    [full] = answer(chat, return_full_text=True)
    assert full["generated_text"].endswith(f"ASSISTANT: {videos[1]['direction']}")
    assert len(answer([chat, chat])) == 2

    with pytest.raises(InvalidInputError, match="videos= and text="):
        answer(videos=videos[0]["video"])
    with pytest.raises(InvalidInputError, match="2 videos for 1 questions"):
        answer(videos=[videos[0]["video"]] * 2, text=["What?"])
    with pytest.raises(InvalidInputError, match="one question for several videos"):
        answer(videos=[videos[0]["video"]] * 2, text="What?")
    with pytest.raises(InvalidInputError, match="takes max_new_tokens"):
        answer(videos=videos[0]["video"], text="What?", temperature=0.5)


def test_apply_chat_template_loads_the_videos_named_in_messages(videos):
    path = world_model_path()
    model = VideoLaVITForConditionalGeneration.from_pretrained(path).eval()
    processor = VideoLaVITProcessor.from_pretrained(path)
    chat = [{"role": "user", "content": [{"type": "video", "path": videos[2]["video"]},
                                         {"type": "text", "text": "What colour is the shape?"}]}]  # fmt: skip
    inputs = processor.apply_chat_template(chat, tokenize=True, return_dict=True, add_generation_prompt=True,
                                           processor_kwargs={"keyframe_tokenizer": model})  # fmt: skip
    prompt = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    expected = processor(text=prompt, videos=videos[2]["video"], keyframe_tokenizer=model)
    assert torch.equal(inputs["input_ids"], expected["input_ids"])
    assert torch.equal(inputs["motion_vectors"], expected["motion_vectors"])
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    answer = processor.post_process_answer(processor.decode(output[0, inputs["input_ids"].shape[1] :],
                                                            skip_special_tokens=True))  # fmt: skip
    assert answer == videos[2]["colour"]
