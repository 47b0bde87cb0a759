"""Convert the reference's detokenizer files into one `VideoLaVITDetokenizerPipeline` folder (safetensors).

Reads, from the release folder:
- `video_detokenizer/unet` (config + pickled weights), `video_detokenizer/vae`, `video_detokenizer/scheduler`;
- `video_3d_unet.bin`: the trained video UNet and motion condition encoder, saved from the reference's
  `VideoDetokenizer` module, so its keys carry that module's prefixes: `unet.*` (diffusers UNet keys, loaded over
  the folder's UNet weights as the reference does) and `motion_encoder.*`; a `motion_tokenizer.*` part, if
  present, is the motion tokenizer. Any other key is an error;
- `motion_tokenizer.bin` (when `video_3d_unet.bin` has no motion tokenizer), `visual_tokenizer/` (the token decoder
  and the keyframe codebook), and `image_detokenizer/{unet,vae,scheduler}` (the SDXL-architecture keyframe model).

Pickled files are read with `torch.load(weights_only=True)`; every key of `video_3d_unet.bin` is mapped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    DDIMScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
)

from ..errors import CheckpointConversionError, InvalidInputError
from ..loading import loading_problems
from ..pipelines.motion_condition_encoder import VideoLaVITMotionConditionEncoder
from ..pipelines.pipeline_video_lavit import VideoLaVITDetokenizerPipeline
from ..pipelines.unet_video_lavit import VideoLaVITVideoUNet
from .common import check_tensors, load_into_meta_model, load_reference_state_dict, write_folder
from .motion_tokenizer import convert_motion_tokenizer, convert_motion_tokenizer_state_dict
from .visual_tokenizer import convert_visual_tokenizer

MOTION_ENCODER_KEY_RULES: list[tuple[str, str]] = [
    (r"pos_embed", "position_embedding"),
    (r"in_proj\.(weight|bias)", r"input_proj.\1"),
    (r"out_proj\.(weight|bias)", r"output_proj.\1"),
    (r"norm\.(weight|bias)", r"norm.\1"),
    (r"blocks\.(\d+)\.norm0\.(weight|bias)", r"blocks.\1.spatial_norm.\2"),
    (r"blocks\.(\d+)\.norm1\.(weight|bias)", r"blocks.\1.temporal_norm.\2"),
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", r"blocks.\1.mlp_norm.\2"),
    (
        r"blocks\.(\d+)\.(spatial|temporal)_attention\.(q_bias|v_bias|qkv\.weight|proj\.weight|proj\.bias)",
        r"blocks.\1.\2_attention.\3",
    ),
    (r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"blocks.\1.mlp.\2.\3"),
]
_SCHEDULERS = {
    "EulerDiscreteScheduler": EulerDiscreteScheduler,
    "EulerAncestralDiscreteScheduler": EulerAncestralDiscreteScheduler,
    "DDIMScheduler": DDIMScheduler,
}


def _split(state_dict: dict[str, torch.Tensor], source: str) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {"unet": {}, "motion_encoder": {}, "motion_tokenizer": {}}
    unknown = []
    for key, value in state_dict.items():
        prefix, _, rest = key.partition(".")
        if prefix in parts and rest:
            parts[prefix][rest] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointConversionError(
            f"{source}: {len(unknown)} keys outside unet.* / motion_encoder.* / motion_tokenizer.* "
            f"(first: {', '.join(unknown[:5])}); is this the reference's video_3d_unet.bin?"
        )
    if not parts["unet"] or not parts["motion_encoder"]:
        raise CheckpointConversionError(f"{source}: no unet.* or no motion_encoder.* weights")
    return parts


def _motion_encoder(state_dict: dict[str, torch.Tensor], num_attention_heads: int, source: str):
    try:
        hidden = state_dict["in_proj.weight"].shape[0]
        config = dict(
            in_channels=int(state_dict["in_proj.weight"].shape[1]),
            out_channels=int(state_dict["out_proj.weight"].shape[0]),
            hidden_size=int(hidden),
            num_attention_heads=num_attention_heads,
            num_layers=1 + max(int(key.split(".")[1]) for key in state_dict if key.startswith("blocks.")),
            mlp_ratio=state_dict["blocks.0.mlp.fc1.weight"].shape[0] / hidden,
            grid_size=round(state_dict["pos_embed"].shape[1] ** 0.5),
        )
    except (KeyError, ValueError, IndexError) as error:
        raise CheckpointConversionError(
            f"{source}: not a motion condition encoder ({error!r} missing or malformed)"
        ) from error
    try:
        return load_into_meta_model(
            lambda: VideoLaVITMotionConditionEncoder(**config),
            state_dict,
            MOTION_ENCODER_KEY_RULES,
            f"{source} (motion_encoder.*)",
        )
    except InvalidInputError as error:  # a configuration the encoder cannot be built with
        raise CheckpointConversionError(f"{source} (motion_encoder.*): {error}") from error


def _check_shapes(weights: dict[str, torch.Tensor], expected: dict[str, tuple], source: str) -> None:
    wrong = [key for key, value in weights.items() if tuple(value.shape) != expected[key]]
    if wrong:
        shown = ", ".join(f"{key} {tuple(weights[key].shape)} (expected {expected[key]})" for key in wrong[:3])
        raise CheckpointConversionError(
            f"{source}: {len(wrong)} weights have the wrong shape for the configuration: {shown}; check that the "
            "files belong together and the head counts are right."
        )


def _video_unet(unet_dir: Path, state_dict: dict[str, torch.Tensor], source: str) -> VideoLaVITVideoUNet:
    try:
        config = json.loads((unet_dir / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise CheckpointConversionError(f"{unet_dir}: cannot read the video UNet config.json ({error})") from error
    if not isinstance(config, dict):
        raise CheckpointConversionError(f"{unet_dir / 'config.json'}: not a JSON object")
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    try:
        unet = VideoLaVITVideoUNet.from_config(config)
    except (ValueError, TypeError, InvalidInputError) as error:
        raise CheckpointConversionError(
            f"{unet_dir / 'config.json'}: not a valid video UNet config ({error})"
        ) from error
    weights = {}
    for name in ("diffusion_pytorch_model.bin", "diffusion_pytorch_model.safetensors"):
        if (unet_dir / name).exists():
            if name.endswith(".bin"):
                weights = load_reference_state_dict(unet_dir / name)
            else:
                from safetensors.torch import load_file

                weights = load_file(unet_dir / name)
                check_tensors(weights, str(unet_dir / name))
            break
    weights.update(state_dict)  # video_3d_unet.bin over the folder's weights, as the reference loads them
    expected = unet.state_dict()
    unknown = sorted(set(weights) - set(expected))
    missing = sorted(set(expected) - set(weights))
    if unknown or missing:
        raise CheckpointConversionError(
            f"{source}: the video UNet weights do not match its config "
            f"({len(unknown)} unknown, first: {unknown[:3]}; {len(missing)} missing, first: {missing[:3]})"
        )
    _check_shapes(weights, {key: tuple(value.shape) for key, value in expected.items()}, source)
    unet.load_state_dict({key: value.float() for key, value in weights.items()})
    return unet.eval()


def _load_diffusers_model(model_class, folder: Path, what: str):
    """A diffusers model from a reference folder, refusing missing, unexpected or mis-shaped weights."""
    try:
        model, info = model_class.from_pretrained(folder, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise CheckpointConversionError(f"{folder}: cannot load the {what} ({error})") from error
    problems = loading_problems(info)
    if problems:
        raise CheckpointConversionError(
            f"{folder}: the {what}'s weights do not match its config: {'; '.join(problems)}"
        )
    return model


def _scheduler(folder: Path):
    try:
        name = json.loads((folder / "scheduler_config.json").read_text())["_class_name"]
    except (OSError, ValueError, KeyError) as error:
        raise CheckpointConversionError(f"{folder}: cannot read scheduler_config.json ({error})") from error
    if name not in _SCHEDULERS:
        raise CheckpointConversionError(f"{folder}: unsupported scheduler {name}; expected one of {list(_SCHEDULERS)}")
    return _SCHEDULERS[name].from_pretrained(folder)


def convert_detokenizer(
    checkpoint_dir: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    motion_encoder_heads: int = 8,
    motion_tokenizer_heads: int = 8,
    visual_num_attention_heads: int = 16,
    vision_num_attention_heads: int | None = None,
    include_keyframe_model: bool = True,
    overwrite: bool = False,
) -> VideoLaVITDetokenizerPipeline:
    """Build (and with `output_dir`, save) the detokenizer pipeline from a reference release folder.

    Args:
        checkpoint_dir: the folder holding `video_detokenizer/`, `video_3d_unet.bin`, `motion_tokenizer.bin`,
            `visual_tokenizer/` and `image_detokenizer/`.
        motion_encoder_heads / motion_tokenizer_heads: attention heads the shapes do not tell (8 / 8).
        visual_num_attention_heads / vision_num_attention_heads: heads of the token decoder / keyframe ViT (16 / 16).
        include_keyframe_model: also convert the keyframe path (`visual_tokenizer/` and `image_detokenizer/`).
        overwrite: replace an `output_dir` that already holds files (it is written completely or not at all, and
            never when it is, or holds, the release folder).
    """
    root = Path(checkpoint_dir)
    if not root.is_dir():
        raise CheckpointConversionError(f"{root}: no such folder; pass the Video-LaVIT release folder")
    source = root / "video_3d_unet.bin"
    parts = _split(load_reference_state_dict(source), str(source))
    unet = _video_unet(root / "video_detokenizer" / "unet", parts["unet"], str(source))
    motion_encoder = _motion_encoder(parts["motion_encoder"], motion_encoder_heads, str(source))
    if parts["motion_tokenizer"]:
        motion_tokenizer = convert_motion_tokenizer_state_dict(
            parts["motion_tokenizer"], motion_tokenizer_heads, source=f"{source} (motion_tokenizer.*)"
        )
    else:
        motion_tokenizer = convert_motion_tokenizer(
            root / "motion_tokenizer.bin", num_attention_heads=motion_tokenizer_heads
        )
    vae = _load_diffusers_model(AutoencoderKLTemporalDecoder, root / "video_detokenizer" / "vae", "video VAE")
    components = dict(
        unet=unet,
        motion_encoder=motion_encoder,
        vae=vae,
        scheduler=_scheduler(root / "video_detokenizer" / "scheduler"),
        motion_tokenizer=motion_tokenizer,
    )
    if include_keyframe_model:
        _, token_decoder = convert_visual_tokenizer(
            root / "visual_tokenizer", None, vision_num_attention_heads, visual_num_attention_heads
        )
        image_dir = root / "image_detokenizer"
        keyframe_unet = _load_diffusers_model(UNet2DConditionModel, image_dir / "unet", "keyframe UNet")
        keyframe_vae = _load_diffusers_model(AutoencoderKL, image_dir / "vae", "keyframe VAE")
        components.update(
            token_decoder=token_decoder,
            keyframe_unet=keyframe_unet,
            keyframe_vae=keyframe_vae,
            keyframe_scheduler=_scheduler(image_dir / "scheduler"),
        )
    pipeline = VideoLaVITDetokenizerPipeline(**components)
    if output_dir is not None:
        write_folder(output_dir, pipeline.save_pretrained, overwrite=overwrite, sources=[root])
    return pipeline


__all__ = ["MOTION_ENCODER_KEY_RULES", "convert_detokenizer"]
