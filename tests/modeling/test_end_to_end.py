"""Understanding end to end: chat template -> processor (a real video and an image) -> generate -> decode."""

import pytest
import torch
from PIL import Image
from tiny_models import spread_keep_scores
from tiny_models import tiny_video_lavit_config as tiny_config
from tiny_tokenizer import build_tiny_video_lavit_tokenizer
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITVideoProcessor, make_sample_video
from video_lavit.processing import VideoLaVITProcessor


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny understanding checkpoint folder with its processor, as the converter writes it."""
    folder = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    model = VideoLaVITForConditionalGeneration(tiny_config(image_size=224, patch_size=56)).eval()
    spread_keep_scores(model.model.visual_tokenizer)
    model.save_pretrained(folder)
    video_processor = VideoLaVITVideoProcessor(encoder_threads=3)
    VideoLaVITProcessor(tokenizer=build_tiny_video_lavit_tokenizer(), video_processor=video_processor).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return make_sample_video(path, width=64, height=48, seconds=5.0, fps=24, shift=(2, 1))


def test_video_and_image_questions_in_one_batch(checkpoint, video):
    processor = AutoProcessor.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    assert isinstance(AutoModelForImageTextToText.from_pretrained(checkpoint), VideoLaVITForConditionalGeneration)
    conversations = [
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is happening?"}]}],
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the car?"}]}],
    ]
    prompts = [processor.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    assert prompts[0].endswith(" USER: <video>\nWhat is happening? ASSISTANT:")
    image = Image.new("RGB", (80, 60), (200, 30, 30))
    inputs = processor(text=prompts, videos=[video], images=[image], keyframe_tokenizer=model)
    assert set(inputs) == {"input_ids", "attention_mask", "motion_vectors", "keyframe_features"}
    assert len(inputs["motion_vectors"]) >= 1
    output = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    prompt_length = inputs["input_ids"].shape[1]
    assert torch.equal(output[:, :prompt_length], inputs["input_ids"])
    answers = output[:, prompt_length:]
    assert (answers < model.token_layout.text_vocab_size).all(), "no marker or code id in answers"
    texts = processor.post_process_answer(processor.batch_decode(answers, skip_special_tokens=True))
    assert len(texts) == 2 and all(isinstance(text, str) for text in texts)
    # Each prompt alone gives the same greedy answer as in the batch.
    alone = processor(text=prompts[1], images=[image], keyframe_tokenizer=model)
    single = model.generate(**alone, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert torch.equal(single[0, alone["input_ids"].shape[1] :], answers[1])
    # The reference's stop at the literal backslash-n goes through transformers' stop strings.
    stopped = model.generate(
        **alone, max_new_tokens=5, do_sample=False, stop_strings=["\\n"], tokenizer=processor.tokenizer
    )
    assert stopped.shape[1] <= single.shape[1]


def test_device_map_auto_loading(checkpoint):
    model = AutoModelForCausalLM.from_pretrained(checkpoint, device_map="auto").eval()
    reference = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    ids = torch.tensor([[1, 40, 50]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, reference(input_ids=ids).logits)
