"""Every Python block of the README runs, in order and in one namespace, on tiny models, so the README stays true.

The blocks run in a folder that holds every file they name: short procedural videos and pictures, a miniature
release (`Video-LaVIT-v1/`, from the reference fixtures) and tiny converted folders (`converted/...`). What differs
from a run on the released weights is listed in `ADAPTATIONS`: the tiny fixtures' head counts and input size, a tiny
motion-tokenizer configuration for the training block, and small video sizes and step counts for the diffusion
pipelines. Every other line runs as written.
"""

import functools
import json
import os
import re
import shutil
import sys
import time

import pytest
import torch
from PIL import Image
from tiny_models import spread_keep_scores, tiny_video_lavit_config
from tiny_tokenizer import build_tiny_llama_tokenizer, build_tiny_video_lavit_tokenizer

import video_lavit
from video_lavit import (
    VideoLaVITDetokenizerPipeline,
    VideoLaVITForConditionalGeneration,
    VideoLaVITKeyframePipeline,
    VideoLaVITProcessor,
    VideoLaVITVideoProcessor,
    add_video_lavit_tokens,
    make_sample_video,
)
from video_lavit.conversion.detokenizer import convert_detokenizer
from video_lavit.media_tokenizers.token_layout import VideoLaVITTokenLayout

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pipelines"))
from test_pipeline_video_lavit import HEADS, write_release_folder  # noqa: E402

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "reference")

# (text in a block, what runs instead): only sizes that the tiny fixtures and a 2-core test machine need.
ADAPTATIONS = [
    # the tiny keyframe tokenizer fixture reads 112 x 112 images
    (
        'tokenizer.tokenize(batch["keyframe_pixel_values"])',
        'tokenizer.tokenize(small(batch["keyframe_pixel_values"]))',
    ),
    (
        'tokenizer.encode_features(batch["keyframe_pixel_values"])',
        'tokenizer.encode_features(small(batch["keyframe_pixel_values"]))',
    ),
    # a tiny configuration and two steps for the training block
    (
        "VideoLaVITMotionTokenizerConfig(use_ema_codebook",
        "VideoLaVITMotionTokenizerConfig(**TINY_MOTION, use_ema_codebook",
    ),
    ("max_steps=1000", "max_steps=2, report_to=[]"),
]
TINY_MOTION = dict(hidden_size=16, num_attention_heads=2, codebook_size=16, code_dim=8, blocks_per_stage=1)


def python_blocks() -> list[str]:
    with open(README) as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), flags=re.DOTALL)


def small_pipeline_call(call):
    """A pipeline call at 64 x 64 with one denoising step, whatever sizes the README asks for."""

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        kwargs.update(height=64, width=64, num_inference_steps=1)
        if "keyframe_num_inference_steps" in call.__code__.co_varnames:
            kwargs.update(keyframe_num_inference_steps=1)
        return call(self, *args, **kwargs)

    return wrapper


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    for name in ("a.mp4", "b.mp4", "lecture.mp4", "cooking.mp4", "clip.mp4"):
        make_sample_video(root / name, width=64, height=48, seconds=4.0, fps=24)
    make_sample_video(root / "b.webm", width=64, height=48, seconds=4.0, fps=24, codec="libvpx")
    Image.new("RGB", (80, 60), (200, 30, 30)).save(root / "car.jpg")
    # Instruction-tuning conversations in the LLaVA / Video-ChatGPT layout, over two of the videos.
    turns = [{"from": "human", "value": "<video>\nWhat moves?"}, {"from": "gpt", "value": "A yellow disc."}]
    samples = [{"id": name, "video": name, "conversations": turns} for name in ("a.mp4", "b.mp4")]
    (root / "conversations.json").write_text(json.dumps(samples))
    Image.new("RGB", (80, 60), (30, 90, 200)).save(root / "first.png")
    release = root / "Video-LaVIT-v1"
    release.mkdir()
    shutil.copy(
        os.path.join(FIXTURES, "motion_tokenizer", "tiny_motion_tokenizer.bin"), release / "motion_tokenizer.bin"
    )
    shutil.copytree(os.path.join(FIXTURES, "visual_tokenizer"), release / "visual_tokenizer")
    converted = root / "converted"
    # The understanding checkpoint, as `convert language-model` writes it (with its processor).
    torch.manual_seed(0)
    understanding = VideoLaVITForConditionalGeneration(tiny_video_lavit_config(image_size=224, patch_size=56))
    spread_keep_scores(understanding.model.visual_tokenizer)
    understanding.save_pretrained(converted / "understanding")
    processor = VideoLaVITProcessor(
        tokenizer=build_tiny_video_lavit_tokenizer(), video_processor=VideoLaVITVideoProcessor(encoder_threads=3)
    )
    processor.save_pretrained(converted / "understanding")
    # The generation checkpoint and the detokenizer, with matching codebooks (64 keyframe and motion codes).
    generation = VideoLaVITForConditionalGeneration(
        tiny_video_lavit_config(
            "codes", image_size=224, patch_size=56, num_visual_codes=64, num_motion_codes=64, num_hidden_layers=1
        )
    )
    spread_keep_scores(generation.model.visual_tokenizer)
    generation.save_pretrained(converted / "generation")
    tokenizer = add_video_lavit_tokens(build_tiny_llama_tokenizer(), VideoLaVITTokenLayout(320, 64, 64))
    VideoLaVITProcessor(
        tokenizer=tokenizer, video_processor=VideoLaVITVideoProcessor(encoder_threads=3)
    ).save_pretrained(converted / "generation")
    convert_detokenizer(write_release_folder(tmp_path_factory.mktemp("release")), converted / "detokenizer", **HEADS)
    return root


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    # The tiny reference fixtures' head counts (the converters' defaults are the released models').
    monkeypatch.setattr(
        video_lavit,
        "convert_motion_tokenizer",
        functools.partial(video_lavit.convert_motion_tokenizer, num_attention_heads=2),
    )
    monkeypatch.setattr(
        video_lavit,
        "convert_visual_tokenizer",
        functools.partial(video_lavit.convert_visual_tokenizer, vision_num_attention_heads=4, num_attention_heads=4),
    )
    for pipeline_class in (VideoLaVITDetokenizerPipeline, VideoLaVITKeyframePipeline):
        monkeypatch.setattr(pipeline_class, "__call__", small_pipeline_call(pipeline_class.__call__))
    blocks = python_blocks()
    assert len(blocks) >= 9
    namespace = {
        "TINY_MOTION": TINY_MOTION,
        "small": lambda pixels: torch.nn.functional.interpolate(pixels, size=(112, 112), mode="bilinear"),
    }
    for index, block in enumerate(blocks):
        for text, instead in ADAPTATIONS:
            block = block.replace(text, instead)
        started = time.monotonic()
        try:
            exec(compile(block, f"README.md python block {index + 1}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"README python block {index + 1} fails:\n{block}") from error
        print(f"README python block {index + 1}: {time.monotonic() - started:.1f} s")
    assert os.path.exists("boat.mp4") and os.path.isdir("my-processor") and os.path.exists("sheet.png")
