"""Convert the reference `visual_tokenizer/` folder into `VideoLaVITVisualTokenizer` and decoder safetensors folders.

The folder holds three pickled state dicts:
- `eva_vitg_psz14.bin`: the EVA-CLIP ViT-g/14 (keys without the `encoder.` prefix the tokenizer gives them);
- `tokenizer_encoder.bin`: the token predictor, merger, code head, codebook and `vit_proj`;
- `highres_tokenizer_decoder.bin`: the token decoder (it shares the tokenizer's codebook, which we copy into it).

Every key is renamed by the rules below (none dropped, none left unmapped); the configurations are read off the
tensor shapes, except the numbers of attention heads, which shapes do not tell (ViT: width / 88, i.e. 16 in the
released model; merger and decoder: 16).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import CheckpointConversionError
from ..media_tokenizers.configuration_visual_tokenizer import (
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizerConfig,
)
from ..media_tokenizers.modeling_visual_token_decoder import VideoLaVITVisualTokenDecoder
from ..media_tokenizers.modeling_visual_tokenizer import VideoLaVITVisualTokenizer
from .common import build_config, check_tensors, load_into_meta_model, load_reference_state_dict, write_folder

VIT_FILE = "eva_vitg_psz14.bin"
TOKENIZER_FILE = "tokenizer_encoder.bin"
DECODER_FILE = "highres_tokenizer_decoder.bin"
EVA_HEAD_WIDTH = 88

# Blocks of the merger (`causal_encoder.blocks.N.`) and the decoder (`blocks.N.`): same layout, other prefixes.
_FUSION_BLOCK_RULES: list[tuple[str, str]] = [
    (r"norm0\.(weight|bias)", r"self_attn_layer_norm.\1"),
    (r"(?:token_causal_attn|self_attn)\.(qkv|proj)\.(weight|bias)", r"self_attn.\1.\2"),
    (r"norm1\.(weight|bias)", r"cross_attn_layer_norm.\1"),
    (r"(?:token_cross_attn|cross_attn)\.(query|key|value|proj)\.(weight|bias)", r"cross_attn.\1.\2"),
    (r"norm2\.(weight|bias)", r"mlp_layer_norm.\1"),
    (r"mlp\.(fc1|fc2)\.(weight|bias)", r"mlp.\1.\2"),
]


def _fusion_rules(source_prefix: str, target_prefix: str) -> list[tuple[str, str]]:
    """Rules for `{source_prefix}blocks.N.*` -> `{target_prefix}layers.N.*` (the group index shifts by one)."""
    rules = []
    for pattern, replacement in _FUSION_BLOCK_RULES:
        shifted = replacement
        for group in range(3, 0, -1):
            shifted = shifted.replace(f"\\{group}", f"\\{group + 1}")
        rules.append((source_prefix + r"blocks\.(\d+)\." + pattern, target_prefix + r"layers.\1." + shifted))
    return rules


TOKENIZER_KEY_RULES: list[tuple[str, str]] = [
    (r"encoder\.cls_token", "vision_model.embeddings.class_embedding"),
    (r"encoder\.pos_embed", "vision_model.embeddings.position_embedding"),
    (r"encoder\.patch_embed\.proj\.(weight|bias)", r"vision_model.embeddings.patch_embedding.\1"),
    (r"encoder\.blocks\.(\d+)\.norm(1|2)\.(weight|bias)", r"vision_model.layers.\1.layer_norm\2.\3"),
    (
        r"encoder\.blocks\.(\d+)\.attn\.(q_bias|v_bias|qkv\.weight|proj\.weight|proj\.bias)",
        r"vision_model.layers.\1.self_attn.\2",
    ),
    (r"encoder\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"vision_model.layers.\1.mlp.\2.\3"),
    (r"encoder\.norm\.(weight|bias)", r"vision_model.post_layernorm.\1"),
    (r"encoder\.head\.(weight|bias)", r"vision_model.head.\1"),
    (r"token_predictor\.in_conv\.0\.(weight|bias)", r"token_predictor.layer_norm.\1"),
    (r"token_predictor\.in_conv\.1\.(weight|bias)", r"token_predictor.in_proj.\1"),
    (r"token_predictor\.out_conv\.0\.(weight|bias)", r"token_predictor.fc1.\1"),
    (r"token_predictor\.out_conv\.2\.(weight|bias)", r"token_predictor.fc2.\1"),
    (r"token_predictor\.out_conv\.4\.(weight|bias)", r"token_predictor.fc3.\1"),
    *_fusion_rules(r"causal_encoder\.", "token_merger."),
    (r"causal_encoder\.ln_vision\.(weight|bias)", r"token_merger.vision_layer_norm.\1"),
    (r"causal_encoder\.norm\.(weight|bias)", r"token_merger.post_layernorm.\1"),
    (r"quantize\.embedding\.weight", "quantizer.embedding.weight"),
    (r"encode_task_layer\.0\.(weight|bias)", r"code_head.fc1.\1"),
    (r"encode_task_layer\.2\.(weight|bias)", r"code_head.fc2.\1"),
    (r"vit_proj\.(weight|bias)", r"language_projection.\1"),
]

DECODER_KEY_RULES: list[tuple[str, str]] = [
    (r"quantize\.embedding\.weight", "quantizer.embedding.weight"),  # copied from the tokenizer
    (r"in_proj\.(weight|bias)", r"input_proj.\1"),
    (r"pos_embed", "position_embedding"),
    (r"query_embed", "query_embeddings"),
    *_fusion_rules("", ""),
    (r"norm\.(weight|bias)", r"post_layernorm.\1"),
    (r"decode_task_layer\.0\.(weight|bias)", r"head.fc1.\1"),
    (r"decode_task_layer\.2\.(weight|bias)", r"head.fc2.\1"),
    (r"unet_proj_1\.(weight|bias)", r"prompt_projections.0.\1"),
    (r"unet_proj_2\.(weight|bias)", r"prompt_projections.1.\1"),
    (r"unet_attnpool\.positional_embedding", "pooler.position_embedding"),
    (r"unet_attnpool\.(q_proj|k_proj|v_proj|c_proj)\.(weight|bias)", r"pooler.\1.\2"),
]


def _count_blocks(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    indices = {int(key[len(prefix) :].split(".")[0]) for key in state_dict if key.startswith(prefix)}
    return max(indices) + 1 if indices else 0


def tokenizer_config_from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    vision_num_attention_heads: int | None = None,
    num_attention_heads: int = 16,
    source: str = "checkpoint",
) -> VideoLaVITVisualTokenizerConfig:
    """The tokenizer configuration whose parameter shapes are those of the merged reference state dict."""
    check_tensors(state_dict, source)
    try:
        hidden = int(state_dict["encoder.cls_token"].shape[-1])
        patch_size = int(state_dict["encoder.patch_embed.proj.weight"].shape[-1])
        grid = round((state_dict["encoder.pos_embed"].shape[1] - 1) ** 0.5)
        codebook_size, code_dim = state_dict["quantize.embedding.weight"].shape
        values = dict(
            image_size=grid * patch_size,
            patch_size=patch_size,
            num_channels=int(state_dict["encoder.patch_embed.proj.weight"].shape[1]),
            vision_hidden_size=hidden,
            vision_num_hidden_layers=_count_blocks(state_dict, "encoder.blocks."),
            vision_intermediate_size=int(state_dict["encoder.blocks.0.mlp.fc1.weight"].shape[0]),
            vision_projection_dim=int(state_dict["encoder.head.weight"].shape[0]),
            merger_num_hidden_layers=_count_blocks(state_dict, "causal_encoder.blocks."),
            merger_intermediate_size=int(state_dict["causal_encoder.blocks.0.mlp.fc1.weight"].shape[0]),
            codebook_size=int(codebook_size),
            code_dim=int(code_dim),
            language_hidden_size=int(state_dict["vit_proj.weight"].shape[0]),
        )
    except (KeyError, IndexError, ValueError) as error:
        raise CheckpointConversionError(
            f"{source}: not a visual tokenizer state dict ({error} is missing or malformed)"
        ) from error
    if vision_num_attention_heads is None:
        if hidden % EVA_HEAD_WIDTH:
            raise CheckpointConversionError(
                f"{source}: the ViT width {hidden} is not a multiple of EVA's head width {EVA_HEAD_WIDTH}; "
                "pass vision_num_attention_heads"
            )
        vision_num_attention_heads = hidden // EVA_HEAD_WIDTH
    values.update(
        vision_num_attention_heads=vision_num_attention_heads, merger_num_attention_heads=num_attention_heads
    )
    return build_config(VideoLaVITVisualTokenizerConfig, source, **values)


def decoder_config_from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor], num_attention_heads: int = 16, source: str = "checkpoint"
) -> VideoLaVITVisualTokenDecoderConfig:
    """The decoder configuration whose parameter shapes are those of the reference decoder state dict."""
    check_tensors(state_dict, source)
    try:
        hidden, code_dim = state_dict["in_proj.weight"].shape
        values = dict(
            codebook_size=int(state_dict["quantize.embedding.weight"].shape[0]),
            code_dim=int(code_dim),
            hidden_size=int(hidden),
            num_hidden_layers=_count_blocks(state_dict, "blocks."),
            num_attention_heads=num_attention_heads,
            intermediate_size=int(state_dict["blocks.0.mlp.fc1.weight"].shape[0]),
            num_queries=int(state_dict["query_embed"].shape[1]),
            output_hidden_size=int(state_dict["decode_task_layer.2.weight"].shape[0]),
            prompt_embed_dims=[
                int(state_dict["unet_proj_1.weight"].shape[0]),
                int(state_dict["unet_proj_2.weight"].shape[0]),
            ],
            pooled_embed_dim=int(state_dict["unet_attnpool.c_proj.weight"].shape[0]),
        )
    except (KeyError, IndexError, ValueError) as error:
        raise CheckpointConversionError(
            f"{source}: not a visual token decoder state dict ({error} is missing or malformed)"
        ) from error
    return build_config(VideoLaVITVisualTokenDecoderConfig, source, **values)


def _merged_tokenizer_state_dict(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    vit = load_reference_state_dict(checkpoint_dir / VIT_FILE)
    tokenizer = load_reference_state_dict(checkpoint_dir / TOKENIZER_FILE)
    merged = {key if key.startswith("encoder.") else f"encoder.{key}": value for key, value in vit.items()}
    for key, value in tokenizer.items():
        if key in merged and not torch.equal(merged[key], value):
            raise CheckpointConversionError(
                f"{checkpoint_dir / TOKENIZER_FILE}: {key} differs from the same weight in {VIT_FILE}"
            )
        merged[key] = value
    return merged


def convert_visual_tokenizer(
    checkpoint_dir: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    vision_num_attention_heads: int | None = None,
    num_attention_heads: int = 16,
    overwrite: bool = False,
) -> tuple[VideoLaVITVisualTokenizer, VideoLaVITVisualTokenDecoder]:
    """Read a reference `visual_tokenizer/` folder; if `output_dir` is given, save both models there (safetensors).

    Writes `output_dir/visual_tokenizer` and `output_dir/visual_token_decoder`, each completely or not at all (see
    `common.write_folder`); folders that already hold files are replaced only with `overwrite=True`, and other
    contents of `output_dir` are left alone.

    Example:
        `tokenizer, decoder = convert_visual_tokenizer("Video-LaVIT-v1/visual_tokenizer", "converted")`, then
        `VideoLaVITVisualTokenizer.from_pretrained("converted/visual_tokenizer")`.
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise CheckpointConversionError(
            f"{checkpoint_dir}: no such folder; pass the reference's visual_tokenizer/ folder "
            f"(with {VIT_FILE}, {TOKENIZER_FILE} and {DECODER_FILE})."
        )
    tokenizer_state = _merged_tokenizer_state_dict(checkpoint_dir)
    tokenizer_source = f"{checkpoint_dir / VIT_FILE} + {TOKENIZER_FILE}"
    tokenizer_config = tokenizer_config_from_reference_state_dict(
        tokenizer_state, vision_num_attention_heads, num_attention_heads, tokenizer_source
    )
    tokenizer = load_into_meta_model(
        lambda: VideoLaVITVisualTokenizer(tokenizer_config), tokenizer_state, TOKENIZER_KEY_RULES, tokenizer_source
    )
    decoder_state = load_reference_state_dict(checkpoint_dir / DECODER_FILE)
    if "quantize.embedding.weight" in decoder_state:
        raise CheckpointConversionError(f"{checkpoint_dir / DECODER_FILE}: unexpected codebook in the decoder file")
    decoder_state["quantize.embedding.weight"] = tokenizer_state["quantize.embedding.weight"]
    decoder_config = decoder_config_from_reference_state_dict(
        decoder_state, num_attention_heads, str(checkpoint_dir / DECODER_FILE)
    )
    decoder = load_into_meta_model(
        lambda: VideoLaVITVisualTokenDecoder(decoder_config),
        decoder_state,
        DECODER_KEY_RULES,
        str(checkpoint_dir / DECODER_FILE),
    )
    if output_dir is not None:
        for name, model in (("visual_tokenizer", tokenizer), ("visual_token_decoder", decoder)):
            write_folder(Path(output_dir) / name, model.save_pretrained, overwrite=overwrite, sources=[checkpoint_dir])
    return tokenizer, decoder
