"""Tiny configurations of every model of the package, for tests: the one place they are written.

Import from any test folder as `from tiny_models import ...` (`tests/` is on `sys.path` through `conftest.py`).
Sizes follow the house style: hidden 16-48, 1-2 layers, codebooks of 16-64 codes, 32x32 keyframes.
"""

from __future__ import annotations

import torch

from video_lavit import (
    VideoLaVITConfig,
    VideoLaVITMotionTokenizerConfig,
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizerConfig,
)

TEXT_VOCAB_SIZE = 320


def tiny_motion_tokenizer_config(**overrides) -> VideoLaVITMotionTokenizerConfig:
    values = dict(hidden_size=16, num_attention_heads=2, codebook_size=16, code_dim=8)
    values.update(overrides)
    return VideoLaVITMotionTokenizerConfig(**values)


def tiny_visual_tokenizer_config(**overrides) -> VideoLaVITVisualTokenizerConfig:
    values = dict(
        image_size=32,
        patch_size=8,
        vision_hidden_size=32,
        vision_num_hidden_layers=2,
        vision_num_attention_heads=2,
        vision_intermediate_size=64,
        vision_projection_dim=16,
        merger_num_hidden_layers=2,
        merger_num_attention_heads=2,
        merger_intermediate_size=64,
        codebook_size=16,
        code_dim=8,
        language_hidden_size=24,
    )
    values.update(overrides)
    return VideoLaVITVisualTokenizerConfig(**values)


def tiny_visual_decoder_config(**overrides) -> VideoLaVITVisualTokenDecoderConfig:
    values = dict(
        codebook_size=16,
        code_dim=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_queries=16,
        output_hidden_size=32,
        prompt_embed_dims=[8, 12],
        pooled_embed_dim=12,
    )
    values.update(overrides)
    return VideoLaVITVisualTokenDecoderConfig(**values)


def tiny_video_lavit_config(
    keyframe_input: str = "features",
    image_size: int = 32,
    patch_size: int = 8,
    num_visual_codes: int = 16,
    num_motion_codes: int = 16,
    num_hidden_layers: int = 2,
    text_config_overrides: dict | None = None,
    **overrides,
) -> VideoLaVITConfig:
    """A tiny Video-LaVIT language model with both tokenizers; the vocabulary fits `tiny_tokenizer`'s."""
    values = dict(
        text_config=dict(
            model_type="llama",
            vocab_size=TEXT_VOCAB_SIZE + 2 + num_visual_codes + 2 + num_motion_codes,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        visual_tokenizer_config=dict(
            image_size=image_size,
            patch_size=patch_size,
            vision_hidden_size=32,
            vision_num_hidden_layers=1,
            vision_num_attention_heads=2,
            vision_intermediate_size=64,
            vision_projection_dim=16,
            merger_num_hidden_layers=1,
            merger_num_attention_heads=2,
            merger_intermediate_size=64,
            codebook_size=num_visual_codes,
            code_dim=8,
            language_hidden_size=32,
        ),
        motion_tokenizer_config=dict(
            hidden_size=16, num_attention_heads=2, codebook_size=num_motion_codes, code_dim=8, blocks_per_stage=1
        ),
        text_vocab_size=TEXT_VOCAB_SIZE,
        keyframe_input=keyframe_input,
    )
    values["text_config"].update(text_config_overrides or {})
    values.update(overrides)
    return VideoLaVITConfig(**values)


def spread_keep_scores(visual_tokenizer, seed: int = 1) -> None:
    """Random initial keep scores are all near zero; larger predictor weights give a clear keep / drop mix."""
    predictor = visual_tokenizer.token_predictor
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (predictor.in_proj, predictor.fc1, predictor.fc2, predictor.fc3):
            layer.weight.normal_(0, 2 * layer.in_features**-0.5, generator=generator)
