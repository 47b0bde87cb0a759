"""Convert the reference's language models into `VideoLaVITForConditionalGeneration` folders (with a processor).

- `language_model_sft/` (understanding): a LLaMA checkpoint whose state dict also holds the keyframe tokenizer
  (`model.visual_tokenizer.*`, trained with the LM) and the motion tokenizer (`model.motion_tokenizer.*`);
  keyframes enter the LM as continuous features.
- `language_model/` (generation): a plain LLaMA checkpoint; the keyframe and motion tokenizers come from their own
  files (`visual_tokenizer/` and `motion_tokenizer.bin`, or folders converted by the other converters); keyframes
  enter the LM as code ids.

Shards (`*.bin` read with `torch.load(weights_only=True)`, or `*.safetensors`) are merged; every key is renamed
(LLaMA keys to `model.language_model.*` / `lm_head.*`, embedded tokenizers by their converters' rules) and every
weight of the model must come from somewhere, else `CheckpointConversionError` names what is missing. The LLaMA
tokenizer is extended with a string form for every id from 32000 on (`tokenization_video_lavit`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import AutoTokenizer, GenerationConfig

from ..errors import CheckpointConversionError
from ..media_tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from ..media_tokenizers.configuration_visual_tokenizer import VideoLaVITVisualTokenizerConfig
from ..modeling.configuration_video_lavit import VideoLaVITConfig
from ..modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration
from ..processing.processing_video_lavit import VideoLaVITProcessor
from ..processing.tokenization_video_lavit import add_video_lavit_tokens
from ..processing.video_processing_video_lavit import VideoLaVITVideoProcessor
from .common import check_tensors, load_into_meta_model, load_reference_state_dict, write_folder
from .motion_tokenizer import KEY_RULES as MOTION_KEY_RULES
from .motion_tokenizer import config_from_reference_state_dict as motion_config_from_state_dict
from .visual_tokenizer import (
    TOKENIZER_KEY_RULES,
    _merged_tokenizer_state_dict,
    tokenizer_config_from_reference_state_dict,
)

LLAMA_KEY_RULES: list[tuple[str, str]] = [
    (r"model\.(embed_tokens|layers|norm)\.(.*)", r"model.language_model.\1.\2"),
    (r"lm_head\.weight", "lm_head.weight"),
]
_LLAMA_CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


def _prefixed(rules: list[tuple[str, str]], source: str, target: str) -> list[tuple[str, str]]:
    return [(re.escape(source) + pattern, target + replacement) for pattern, replacement in rules]


def load_sharded_state_dict(checkpoint_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the `*.bin` / `*.safetensors` shards of a checkpoint folder."""
    files = sorted(checkpoint_dir.glob("*.safetensors")) or sorted(checkpoint_dir.glob("*.bin"))
    if not files:
        raise CheckpointConversionError(f"{checkpoint_dir}: no *.bin or *.safetensors weights in this folder")
    state_dict: dict[str, torch.Tensor] = {}
    for path in files:
        if path.suffix == ".safetensors":
            try:
                shard = load_file(path)
            except (OSError, SafetensorError) as error:
                raise CheckpointConversionError(f"{path}: not a readable safetensors file ({error})") from error
            check_tensors(shard, str(path))
        else:
            shard = load_reference_state_dict(path)
        state_dict.update(shard)
    return state_dict


def _llama_config(checkpoint_dir: Path) -> dict:
    path = checkpoint_dir / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointConversionError(f"{path}: cannot read the LLaMA configuration ({error})") from error
    values = {name: raw[name] for name in _LLAMA_CONFIG_FIELDS if name in raw}
    values["model_type"] = "llama"
    return values


def _embedded(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}


def _visual_source(visual_tokenizer: str | os.PathLike | None, embedded: dict, heads: int, vision_heads: int | None):
    """(config, reference-keyed state dict or None, converted model folder or None) of the keyframe tokenizer."""
    if embedded:
        config = tokenizer_config_from_reference_state_dict(
            embedded, vision_heads, num_attention_heads=heads, source="model.visual_tokenizer.*"
        )
        return config, embedded, None
    if visual_tokenizer is None:
        raise CheckpointConversionError(
            "this checkpoint does not embed the keyframe tokenizer: pass visual_tokenizer (the reference's "
            "visual_tokenizer/ folder, or a folder written by `video-lavit convert visual-tokenizer`)"
        )
    path = Path(visual_tokenizer)
    if (path / "config.json").exists():
        return VideoLaVITVisualTokenizerConfig.from_pretrained(path), None, path
    state = _merged_tokenizer_state_dict(path)
    config = tokenizer_config_from_reference_state_dict(
        state, vision_heads, num_attention_heads=heads, source=str(path)
    )
    return config, state, None


def _motion_source(motion_tokenizer: str | os.PathLike | None, embedded: dict, heads: int):
    if embedded:
        return motion_config_from_state_dict(embedded, heads, "model.motion_tokenizer.*"), embedded, None
    if motion_tokenizer is None:
        raise CheckpointConversionError(
            "this checkpoint does not embed the motion tokenizer: pass motion_tokenizer (the reference's "
            "motion_tokenizer.bin, or a folder written by `video-lavit convert motion-tokenizer`)"
        )
    path = Path(motion_tokenizer)
    if path.is_dir():
        return VideoLaVITMotionTokenizerConfig.from_pretrained(path), None, path
    state = load_reference_state_dict(path)
    return motion_config_from_state_dict(state, heads, str(path)), state, None


def understanding_generation_config(config: VideoLaVITConfig) -> GenerationConfig:
    """The reference's answer settings: sampling (top-p 1.0), 8..512 new tokens.

    Marker and code ids are never generated: `suppress_tokens` holds them (as the model sets by default).
    """
    text = config.text_config
    return GenerationConfig(
        do_sample=True,
        top_p=1.0,
        max_new_tokens=512,
        min_new_tokens=8,
        bos_token_id=text.bos_token_id,
        eos_token_id=text.eos_token_id,
        pad_token_id=text.pad_token_id,
        suppress_tokens=list(config.token_layout.multimodal_id_range),
    )


def generation_generation_config(config: VideoLaVITConfig) -> GenerationConfig:
    """The reference's token-generation sampling: top-k 50, top-p 0.9 (phases set their own limits)."""
    text = config.text_config
    return GenerationConfig(
        do_sample=True,
        top_k=50,
        top_p=0.9,
        bos_token_id=text.bos_token_id,
        eos_token_id=text.eos_token_id,
        pad_token_id=text.pad_token_id,
    )


def convert_language_model(
    checkpoint_dir: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    visual_tokenizer: str | os.PathLike | None = None,
    motion_tokenizer: str | os.PathLike | None = None,
    keyframe_input: str | None = None,
    num_attention_heads: int = 16,
    motion_attention_heads: int = 8,
    vision_attention_heads: int | None = None,
    tokenizer_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    max_shard_size: str | int = "5GB",
) -> tuple[VideoLaVITForConditionalGeneration, VideoLaVITProcessor | None]:
    """Convert `language_model_sft/` or `language_model/` (see the module docstring).

    Args:
        checkpoint_dir: the reference LLaMA folder (config.json + weight shards + tokenizer files).
        output_dir: where to save the model, its generation config and the processor (safetensors).
        visual_tokenizer / motion_tokenizer: sources of tokenizers the checkpoint does not embed.
        keyframe_input: `"features"` or `"codes"`; by default features when the checkpoint embeds the keyframe
            tokenizer (understanding), codes otherwise (generation).
        num_attention_heads / motion_attention_heads: heads of the keyframe merger / motion tokenizer (16 / 8).
        vision_attention_heads: heads of the ViT (default: its width / 88, i.e. 16).
        tokenizer_dir: where the LLaMA tokenizer files are (default: `checkpoint_dir`).
        overwrite: replace an `output_dir` that already holds files (it is written completely or not at all, and
            never when it is one of the inputs).
        max_shard_size: the largest safetensors shard (default 5GB, as the Hub's LLaMA-2 repositories).

    Returns:
        The model (in the checkpoint's dtypes, eval mode) and the processor (None when no tokenizer files are found).
    """
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise CheckpointConversionError(
            f"{checkpoint_dir}: no such folder; pass language_model_sft/ or language_model/"
        )
    state_dict = load_sharded_state_dict(checkpoint_dir)
    visual_embedded = _embedded(state_dict, "model.visual_tokenizer.")
    motion_embedded = _embedded(state_dict, "model.motion_tokenizer.")
    visual_config, visual_state, visual_folder = _visual_source(
        visual_tokenizer, visual_embedded, num_attention_heads, vision_attention_heads
    )
    motion_config, motion_state, motion_folder = _motion_source(
        motion_tokenizer, motion_embedded, motion_attention_heads
    )
    text_config = _llama_config(checkpoint_dir)
    if "vocab_size" not in text_config:
        raise CheckpointConversionError(f"{checkpoint_dir / 'config.json'}: no vocab_size; is this a LLaMA config?")
    text_vocab_size = text_config["vocab_size"] - 4 - visual_config.codebook_size - motion_config.codebook_size
    if text_vocab_size <= 0:
        raise CheckpointConversionError(
            f"{checkpoint_dir}: vocab_size {text_config['vocab_size']} leaves no room for the 4 markers, "
            f"{visual_config.codebook_size} keyframe codes and {motion_config.codebook_size} motion codes; "
            "is this a Video-LaVIT language model?"
        )
    try:
        config = VideoLaVITConfig(
            text_config=text_config,
            visual_tokenizer_config=visual_config,
            motion_tokenizer_config=motion_config,
            text_vocab_size=text_vocab_size,
            keyframe_input=keyframe_input or ("features" if visual_embedded else "codes"),
            architectures=["VideoLaVITForConditionalGeneration"],
        )
    except (ValueError, TypeError, StrictDataclassError) as error:
        raise CheckpointConversionError(
            f"{checkpoint_dir}: not a valid Video-LaVIT configuration ({error})"
        ) from error
    sources = {
        key: value
        for key, value in state_dict.items()
        if not key.startswith(("model.visual_tokenizer.", "model.motion_tokenizer."))
    }
    rules = list(LLAMA_KEY_RULES)
    if visual_state is not None:
        sources.update({f"model.visual_tokenizer.{key}": value for key, value in visual_state.items()})
        rules += _prefixed(TOKENIZER_KEY_RULES, "model.visual_tokenizer.", "model.visual_tokenizer.")
    if motion_state is not None:
        sources.update({f"model.motion_tokenizer.{key}": value for key, value in motion_state.items()})
        rules += _prefixed(MOTION_KEY_RULES, "model.motion_tokenizer.", "model.motion_tokenizer.")
    converted_parts = {}
    if visual_folder is not None:
        converted_parts["model.visual_tokenizer."] = visual_folder
    if motion_folder is not None:
        converted_parts["model.motion_tokenizer."] = motion_folder
    from_folders = {}
    for prefix, folder in converted_parts.items():
        for key, value in load_sharded_state_dict(folder).items():
            from_folders[prefix + key] = value

    def rebuild_rotary_embedding(model):
        # Non-persistent buffers are in no checkpoint: rebuild the rotary embedding's, which the model was built
        # without (on the meta device).
        language_model = model.model.language_model
        language_model.rotary_emb = type(language_model.rotary_emb)(config=language_model.config)

    # Weights keep the checkpoint's dtypes (the released LM is half precision, the tokenizers fp32).
    model = load_into_meta_model(
        lambda: VideoLaVITForConditionalGeneration(config),
        sources,
        rules,
        str(checkpoint_dir),
        dtype=None,
        converted=from_folders,
        finish=rebuild_rotary_embedding,
    )
    model.eval()
    model.generation_config = (
        understanding_generation_config(config)
        if config.keyframe_input == "features"
        else generation_generation_config(config)
    )

    processor = None
    tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else checkpoint_dir
    if any((tokenizer_dir / name).exists() for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
        try:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        except (ImportError, ValueError, OSError) as error:
            raise CheckpointConversionError(
                f"{tokenizer_dir}: cannot load the LLaMA tokenizer ({error}); a tokenizer.model alone needs "
                "`pip install sentencepiece` (or protobuf) to be converted"
            ) from error
        tokenizer = add_video_lavit_tokens(tokenizer, config.token_layout)
        processor = VideoLaVITProcessor(tokenizer=tokenizer, video_processor=VideoLaVITVideoProcessor())
    if output_dir is not None:

        def write(folder):
            model.save_pretrained(folder, max_shard_size=max_shard_size)
            if processor is not None:
                processor.save_pretrained(folder)

        sources = [checkpoint_dir, visual_tokenizer, motion_tokenizer, tokenizer_dir]
        write_folder(output_dir, write, overwrite=overwrite, sources=sources)
    return model, processor


__all__ = ["convert_language_model", "load_sharded_state_dict"]
