"""Convert the reference `motion_tokenizer.bin` into a `VideoLaVITMotionTokenizer` safetensors folder.

Every key of the reference state dict is renamed by the rules below (none dropped, none left unmapped); the
configuration is read off the tensor shapes, except the number of attention heads, which shapes do not tell
(8 in the released model).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ..errors import CheckpointConversionError
from ..media_tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from ..media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer
from .common import build_config, check_tensors, load_into_meta_model, load_reference_state_dict, write_folder

_BLOCK = r"(encoder|decoder)\.blocks\.(\d+)\."
KEY_RULES: list[tuple[str, str]] = [
    (r"encoder\.pos_embed", "encoder.spatial_position_embedding"),
    (r"encoder\.temp_pos", "encoder.temporal_position_embedding"),
    (r"(encoder|decoder)\.in_proj\.(weight|bias)", r"\1.input_proj.\2"),
    (r"(encoder|decoder)\.norm\.(weight|bias)", r"\1.norm.\2"),
    (_BLOCK + r"norm0\.(weight|bias)", r"\1.blocks.\2.spatial_norm.\3"),
    (_BLOCK + r"norm1\.(weight|bias)", r"\1.blocks.\2.temporal_norm.\3"),
    (_BLOCK + r"norm2\.(weight|bias)", r"\1.blocks.\2.mlp_norm.\3"),
    (
        _BLOCK + r"(spatial|temporal)_attention\.(q_bias|v_bias|qkv\.weight|proj\.weight|proj\.bias)",
        r"\1.blocks.\2.\3_attention.\4",
    ),
    (_BLOCK + r"mlp\.(fc1|fc2)\.(weight|bias)", r"\1.blocks.\2.mlp.\3.\4"),
    (r"encoder\.down_sample_layers\.(\d+)\.conv\.(weight|bias)", r"encoder.downsamplers.\1.conv.\2"),
    (r"decoder\.up_sample_layers\.(\d+)\.conv\.(weight|bias)", r"decoder.upsamplers.\1.conv.\2"),
    (r"encode_task_layer\.0\.(weight|bias)", r"quant_proj.fc1.\1"),
    (r"encode_task_layer\.2\.(weight|bias)", r"quant_proj.fc2.\1"),
    (r"decode_task_layer\.0\.(weight|bias)", r"output_proj.fc1.\1"),
    (r"decode_task_layer\.2\.(weight|bias)", r"output_proj.fc2.\1"),
    (r"quantize\.embedding\.weight", "quantizer.embedding.weight"),
]


def config_from_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor], num_attention_heads: int = 8, source: str = "checkpoint", **overrides
) -> VideoLaVITMotionTokenizerConfig:
    """The configuration whose parameter shapes are those of `state_dict`."""
    check_tensors(state_dict, source)
    try:
        hidden_size = state_dict["encoder.pos_embed"].shape[-1]
        codebook_size, code_dim = state_dict["quantize.embedding.weight"].shape
        intermediate = state_dict["encoder.blocks.0.mlp.fc1.weight"].shape[0]
        blocks = 1 + max(int(key.split(".")[2]) for key in state_dict if key.startswith("encoder.blocks."))
    except (KeyError, ValueError, IndexError) as error:
        raise CheckpointConversionError(
            f"{source}: not a motion tokenizer state dict ({error!r} is missing or malformed)"
        ) from error
    if blocks % 4:
        raise CheckpointConversionError(f"{source}: the encoder has {blocks} blocks, not a multiple of its 4 stages")
    values = dict(
        hidden_size=int(hidden_size),
        num_attention_heads=num_attention_heads,
        mlp_ratio=intermediate / hidden_size,
        blocks_per_stage=blocks // 4,
        codebook_size=int(codebook_size),
        code_dim=int(code_dim),
    )
    values.update(overrides)
    return build_config(VideoLaVITMotionTokenizerConfig, source, **values)


def convert_motion_tokenizer_state_dict(
    state_dict: Mapping[str, torch.Tensor], num_attention_heads: int = 8, source: str = "checkpoint", **overrides
) -> VideoLaVITMotionTokenizer:
    """Build a `VideoLaVITMotionTokenizer` holding the weights of a reference state dict (fp32, eval mode)."""
    config = config_from_reference_state_dict(state_dict, num_attention_heads, source, **overrides)
    return load_into_meta_model(lambda: VideoLaVITMotionTokenizer(config), state_dict, KEY_RULES, source)


def convert_motion_tokenizer(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    num_attention_heads: int = 8,
    overwrite: bool = False,
    **overrides,
) -> VideoLaVITMotionTokenizer:
    """Read the reference `motion_tokenizer.bin` and, if `output_dir` is given, save the model there (safetensors).

    The folder is written completely or not at all (see `common.write_folder`); a folder that already holds files is
    replaced only with `overwrite=True`.

    Example:
        `convert_motion_tokenizer("Video-LaVIT-v1/motion_tokenizer.bin", "converted/motion_tokenizer")`, then
        `VideoLaVITMotionTokenizer.from_pretrained("converted/motion_tokenizer")`.
    """
    state_dict = load_reference_state_dict(checkpoint)
    model = convert_motion_tokenizer_state_dict(
        state_dict, num_attention_heads, source=os.fspath(checkpoint), **overrides
    )
    if output_dir is not None:
        write_folder(output_dir, model.save_pretrained, overwrite=overwrite, sources=[checkpoint])
    return model
