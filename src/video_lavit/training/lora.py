"""PEFT LoRA for the language model of Video-LaVIT: which layers adapt, and which token rows train with them.

`video_lavit_lora_config` targets the decoder's linear layers only (attention and MLP projections of
`model.language_model`); the keyframe and motion tokenizers are left out, as `freeze_for_training` leaves them
frozen. Instruction tuning on a checkpoint that already knows the media tokens needs nothing more. A stage that
must learn new uses of the media tokens (pre-training a checkpoint whose marker and code rows are untrained, or a
new layout) also trains their rows of the input embedding and of the output head through PEFT's
`trainable_token_indices`; `save_pretrained` then writes the adapter and only those rows.

QLoRA-style loading (bitsandbytes, on a GPU or the CPU): load the model with
`BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16,
llm_int8_skip_modules=video_lavit.QUANTIZATION_SKIP_MODULES)`, call `peft.prepare_model_for_kbit_training(model)`,
then `get_peft_model(model, video_lavit_lora_config(model))` (tests/test_quantization.py runs a step).
"""

from __future__ import annotations

from peft import LoraConfig

from ..errors import InvalidInputError
from ..media_tokenizers.token_layout import VideoLaVITTokenLayout

LANGUAGE_MODEL_LINEAR_LAYERS = (
    r"(.*\.)?model\.language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
)
"""PEFT `target_modules` (full-match regular expression): every linear layer of the decoder, nothing else."""
TRAINABLE_TOKEN_CHOICES = ("none", "markers", "keyframe-codes", "motion-codes", "media")


def media_token_ids(layout: VideoLaVITTokenLayout, which: str) -> list[int]:
    """Token ids of a group: `"markers"` (`[IMG] [/IMG] [MOV] [/MOV]`), `"keyframe-codes"`, `"motion-codes"`, or
    `"media"` (all three); `"none"` gives no id."""
    if which not in TRAINABLE_TOKEN_CHOICES:
        raise InvalidInputError(
            f"trainable tokens must be one of {', '.join(TRAINABLE_TOKEN_CHOICES)}, got {which!r}."
        )
    markers = [layout.image_start_id, layout.image_end_id, layout.motion_start_id, layout.motion_end_id]
    keyframe = list(range(layout.visual_code_offset, layout.visual_code_offset + layout.num_visual_codes))
    motion = list(range(layout.motion_code_offset, layout.motion_code_offset + layout.num_motion_codes))
    groups = {"none": [], "markers": markers, "keyframe-codes": keyframe, "motion-codes": motion}
    groups["media"] = sorted(markers + keyframe + motion)
    return groups[which]


def video_lavit_lora_config(
    model,
    r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    trainable_tokens: str = "none",
    target_modules: str | list[str] | None = None,
    **kwargs,
) -> LoraConfig:
    """A `LoraConfig` for a [`VideoLaVITForConditionalGeneration`].

    Args:
        model: the model to adapt (its token layout names the rows of `trainable_tokens`).
        r, lora_alpha, lora_dropout: LoRA's rank, scale and dropout.
        trainable_tokens (`str`, *optional*, defaults to `"none"`): token rows of the input embedding and the
            output head that train too (see `media_token_ids`).
        target_modules (*optional*): PEFT's `target_modules`; default `LANGUAGE_MODEL_LINEAR_LAYERS`.
        **kwargs: any other `LoraConfig` field.
    """
    indices = media_token_ids(model.token_layout, trainable_tokens)
    token_rows = {"embed_tokens": indices, "lm_head": indices} if indices else None
    return LoraConfig(
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules or LANGUAGE_MODEL_LINEAR_LAYERS,
        trainable_token_indices=token_rows,
        task_type="CAUSAL_LM",
        **kwargs,
    )


__all__ = ["LANGUAGE_MODEL_LINEAR_LAYERS", "TRAINABLE_TOKEN_CHOICES", "media_token_ids", "video_lavit_lora_config"]
