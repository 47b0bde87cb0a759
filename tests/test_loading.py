"""Saved folders load whole or not at all: missing, unexpected or mis-shaped weights, impossible or oversized
configurations and missing folders are the package's errors, at once."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_models import tiny_video_lavit_config as tiny_config  # noqa: E402

from video_lavit import (
    VideoLaVITConfig,
    VideoLaVITForConditionalGeneration,
    VideoLaVITMotionConditionEncoder,
    VideoLaVITMotionTokenizer,
    VideoLaVITMotionTokenizerConfig,
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizerConfig,
)
from video_lavit.errors import CheckpointLoadError, InvalidInputError
from video_lavit.pipelines import VideoLaVITDetokenizerPipeline

TINY_MOTION = dict(hidden_size=16, num_attention_heads=2, codebook_size=16, code_dim=8, blocks_per_stage=1)


@pytest.fixture
def saved_motion_tokenizer(tmp_path):
    torch.manual_seed(0)
    VideoLaVITMotionTokenizer(VideoLaVITMotionTokenizerConfig(**TINY_MOTION)).save_pretrained(tmp_path / "motion")
    return tmp_path / "motion"


def edit_weights(folder, edit, name="model.safetensors"):
    weights = load_file(folder / name)
    edit(weights)
    save_file(weights, folder / name, metadata={"format": "pt"})


def test_a_missing_codebook_is_refused(saved_motion_tokenizer):
    edit_weights(saved_motion_tokenizer, lambda weights: weights.pop("quantizer.embedding.weight"))
    with pytest.raises(CheckpointLoadError, match="1 missing weights \\(quantizer.embedding.weight\\)"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)


def test_unexpected_and_mis_shaped_weights_are_refused(saved_motion_tokenizer):
    edit_weights(saved_motion_tokenizer, lambda weights: weights.update({"extra.weight": torch.zeros(3)}))
    with pytest.raises(CheckpointLoadError, match="unexpected weights \\(extra.weight\\)"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)
    edit_weights(saved_motion_tokenizer, lambda weights: weights.pop("extra.weight"))
    VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)  # whole again
    edit_weights(
        saved_motion_tokenizer, lambda weights: weights.update({"quantizer.embedding.weight": torch.zeros(16, 9)})
    )
    with pytest.raises(CheckpointLoadError, match="quantizer.embedding.weight"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)


def test_language_model_and_diffusers_models_load_strictly(tmp_path):
    torch.manual_seed(0)
    VideoLaVITForConditionalGeneration(tiny_config()).save_pretrained(tmp_path / "lm")
    edit_weights(tmp_path / "lm", lambda weights: weights.pop("lm_head.weight"))
    with pytest.raises(CheckpointLoadError, match="lm_head.weight"):
        VideoLaVITForConditionalGeneration.from_pretrained(tmp_path / "lm")
    encoder = VideoLaVITMotionConditionEncoder(out_channels=8, hidden_size=16, num_attention_heads=2, num_layers=1)
    encoder.save_pretrained(tmp_path / "encoder")
    name = "diffusion_pytorch_model.safetensors"
    edit_weights(tmp_path / "encoder", lambda weights: weights.pop("position_embedding"), name)
    with pytest.raises(CheckpointLoadError, match="position_embedding"):
        VideoLaVITMotionConditionEncoder.from_pretrained(tmp_path / "encoder")


def test_pipeline_components_of_diffusers_load_strictly(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "pipelines"))
    from test_pipeline_video_lavit import HEADS, write_release_folder

    from video_lavit.conversion.detokenizer import convert_detokenizer

    convert_detokenizer(
        write_release_folder(tmp_path / "release"), tmp_path / "pipe", include_keyframe_model=False, **HEADS
    )
    VideoLaVITDetokenizerPipeline.from_pretrained(tmp_path / "pipe")
    vae = tmp_path / "pipe" / "vae"
    edit_weights(vae, lambda weights: weights.pop(next(iter(weights))), "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointLoadError, match="vae .*missing"):
        VideoLaVITDetokenizerPipeline.from_pretrained(tmp_path / "pipe")


def test_missing_local_folders_fail_at_once_without_the_network(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "converted").mkdir()
    for loader in (
        VideoLaVITMotionTokenizer.from_pretrained,
        VideoLaVITForConditionalGeneration.from_pretrained,
        VideoLaVITMotionConditionEncoder.from_pretrained,
        VideoLaVITDetokenizerPipeline.from_pretrained,
    ):
        for path in ("converted/generation", "./nope", str(tmp_path / "absent"), "a/b/c"):
            start = time.monotonic()
            with pytest.raises(CheckpointLoadError, match="no such folder"):
                loader(path)
            assert time.monotonic() - start < 5
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(CheckpointLoadError, match="is a file"):
        VideoLaVITMotionTokenizer.from_pretrained(tmp_path / "file.json")


def test_a_configuration_asking_for_more_memory_than_there_is_is_refused(saved_motion_tokenizer):
    config = json.loads((saved_motion_tokenizer / "config.json").read_text())
    config.update(hidden_size=131072, num_attention_heads=2)  # about 4 TB of parameters
    (saved_motion_tokenizer / "config.json").write_text(json.dumps(config))
    start = time.monotonic()
    with pytest.raises(CheckpointLoadError, match="GB of memory free"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: VideoLaVITMotionTokenizerConfig(hidden_size=-8), "hidden_size must be a positive integer"),
        (lambda: VideoLaVITMotionTokenizerConfig(num_attention_heads=0), "num_attention_heads must be a positive"),
        (lambda: VideoLaVITMotionTokenizerConfig(num_attention_heads=7), "multiple of"),
        (lambda: VideoLaVITMotionTokenizerConfig(codebook_size=0), "codebook_size"),
        (lambda: VideoLaVITMotionTokenizerConfig(layer_norm_eps=0.0), "layer_norm_eps"),
        (lambda: VideoLaVITMotionTokenizerConfig(num_frames=12), "24 x 20 x 36"),
        (lambda: VideoLaVITVisualTokenizerConfig(vision_num_attention_heads=0), "vision_num_attention_heads"),
        (lambda: VideoLaVITVisualTokenizerConfig(patch_size=-14), "patch_size"),
        (lambda: VideoLaVITVisualTokenDecoderConfig(prompt_embed_dims=[768, 0]), "prompt_embed_dims"),
        (lambda: VideoLaVITVisualTokenDecoderConfig(num_attention_heads=5), "multiple of"),
        (lambda: VideoLaVITConfig(text_vocab_size=0), "text_vocab_size"),
        (lambda: VideoLaVITMotionConditionEncoder(num_attention_heads=0), "num_attention_heads"),
        (lambda: VideoLaVITMotionConditionEncoder(hidden_size=30, num_attention_heads=8), "multiple of"),
    ],
)
def test_impossible_configurations_are_refused_when_made(make, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        make()


def test_an_impossible_saved_configuration_is_refused_when_loaded(saved_motion_tokenizer):
    config = json.loads((saved_motion_tokenizer / "config.json").read_text())
    config["num_attention_heads"] = 0
    (saved_motion_tokenizer / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="num_attention_heads"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)


def test_damaged_saved_folders_are_the_packages_errors(saved_motion_tokenizer):
    weights = saved_motion_tokenizer / "model.safetensors"
    original, config = weights.read_bytes(), (saved_motion_tokenizer / "config.json").read_text()
    edit_weights(
        saved_motion_tokenizer, lambda w: w.update({"encoder.norm.weight": w["encoder.norm.weight"] * torch.nan})
    )
    with pytest.raises(CheckpointLoadError, match="NaN or infinite.*encoder.norm.weight"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)
    for damage in (
        lambda: weights.write_bytes(original[: len(original) // 2]),  # cut off
        lambda: weights.write_bytes((2**40).to_bytes(8, "little") + original[8:]),  # a header length of 1 TB
        lambda: (saved_motion_tokenizer / "config.json").write_text("[]"),
        lambda: (saved_motion_tokenizer / "config.json").write_text("{not json"),
        lambda: (saved_motion_tokenizer / "config.json").write_text(
            json.dumps(json.loads(config) | {"dtype": "notatype"})
        ),
        lambda: weights.unlink(),
    ):
        weights.write_bytes(original)
        (saved_motion_tokenizer / "config.json").write_text(config)
        damage()
        with pytest.raises(CheckpointLoadError, match="cannot load the saved VideoLaVITMotionTokenizer"):
            VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)


def test_absurd_layer_counts_are_refused_before_anything_is_built(saved_motion_tokenizer):
    config = json.loads((saved_motion_tokenizer / "config.json").read_text())
    (saved_motion_tokenizer / "config.json").write_text(json.dumps(config | {"blocks_per_stage": 2000}))
    start = time.monotonic()
    with pytest.raises(InvalidInputError, match="blocks_per_stage must be at most 64"):
        VideoLaVITMotionTokenizer.from_pretrained(saved_motion_tokenizer)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("name", ["converted/nope", "nope", "./converted/nope"])
def test_a_missing_folder_is_an_error_at_once_never_a_download(name, monkeypatch, tmp_path):
    import time

    from huggingface_hub import constants

    from video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITProcessor, VideoLaVITVideoProcessor

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for model_class in (
        VideoLaVITForConditionalGeneration,
        VideoLaVITProcessor,
        VideoLaVITVideoProcessor,
        VideoLaVITMotionTokenizer,
        VideoLaVITDetokenizerPipeline,
    ):
        started = time.monotonic()
        with pytest.raises(CheckpointLoadError, match="no such folder"):
            model_class.from_pretrained(name)
        assert time.monotonic() - started < 5
