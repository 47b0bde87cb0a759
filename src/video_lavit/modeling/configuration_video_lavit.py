"""Configuration of the unified Video-LaVIT model: a LLaMA decoder over text, keyframe and motion tokens, with the
keyframe and motion tokenizers inside."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ..checks import CheckedConfigMixin, check_at_most, check_positive_ints
from ..errors import InvalidInputError
from ..media_tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from ..media_tokenizers.configuration_visual_tokenizer import VideoLaVITVisualTokenizerConfig
from ..media_tokenizers.token_layout import VideoLaVITTokenLayout

# LLaMA-2-7B with the Video-LaVIT vocabulary (32000 text + 2 + 16384 + 2 + 1024 = 49412 ids).
LLAMA_7B = {
    "vocab_size": 49412,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


@strict
class VideoLaVITConfig(CheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`VideoLaVITForConditionalGeneration`].

    text_config (`dict` or `PreTrainedConfig`, *optional*):
        The LLaMA decoder (defaults to LLaMA-2-7B with a 49412-id vocabulary).
    visual_tokenizer_config (`dict` or [`VideoLaVITVisualTokenizerConfig`], *optional*):
        The keyframe tokenizer; its `language_hidden_size` must equal the decoder's width.
    motion_tokenizer_config (`dict` or [`VideoLaVITMotionTokenizerConfig`], *optional*):
        The motion tokenizer.
    text_vocab_size (`int`, *optional*, defaults to 32000):
        Ids below this are text; the markers and codes follow (see `token_layout`).
    keyframe_input (`str`, *optional*, defaults to `"features"`):
        How keyframes enter the decoder: `"features"` (continuous merged-token features through the tokenizer's
        `language_projection`: the understanding checkpoint) or `"codes"` (discrete code ids: the generation
        checkpoint, whose outputs the detokenizer renders).
    keyframe_selection (`str`, *optional*, defaults to `"argmax"`):
        How the keyframe tokenizer picks tokens: `"argmax"` (deterministic) or `"sample"` (the reference's random
        Gumbel sampling).
    tie_word_embeddings (`bool`, *optional*, defaults to `False`):
        Whether the output layer shares the input embedding (it does not in the released models).
    """

    model_type = "video_lavit"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama", init_kwargs=LLAMA_7B),
        "visual_tokenizer_config": VideoLaVITVisualTokenizerConfig,
        "motion_tokenizer_config": VideoLaVITMotionTokenizerConfig,
    }

    text_config: dict | PreTrainedConfig | None = None
    visual_tokenizer_config: dict | VideoLaVITVisualTokenizerConfig | None = None
    motion_tokenizer_config: dict | VideoLaVITMotionTokenizerConfig | None = None
    text_vocab_size: int = 32000
    keyframe_input: Literal["features", "codes"] = "features"
    keyframe_selection: Literal["argmax", "sample"] = "argmax"
    tie_word_embeddings: bool = False

    def check_values(self) -> None:
        """Raise `InvalidInputError` for settings the model cannot be built with (run when the config is made)."""
        owner = type(self).__name__
        check_positive_ints(owner, self, ("text_vocab_size",))
        text = self.text_config
        check_positive_ints(
            f"{owner}.text_config", text, ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
        )
        check_at_most(f"{owner}.text_config", text, {"num_hidden_layers": 1024})
        layout = self.token_layout
        if text.vocab_size < layout.vocab_size:
            raise InvalidInputError(
                f"{owner}.text_config.vocab_size ({text.vocab_size}) must be at least {layout.vocab_size}: "
                f"{self.text_vocab_size} text ids + 2 + {layout.num_visual_codes} keyframe codes + 2 + "
                f"{layout.num_motion_codes} motion codes (ids past them are tokens added by resize_token_embeddings)."
            )
        if self.visual_tokenizer_config.language_hidden_size != text.hidden_size:
            raise InvalidInputError(
                f"{owner}.visual_tokenizer_config.language_hidden_size "
                f"({self.visual_tokenizer_config.language_hidden_size}) must equal text_config.hidden_size "
                f"({text.hidden_size})."
            )

    @property
    def token_layout(self) -> VideoLaVITTokenLayout:
        return VideoLaVITTokenLayout(
            text_vocab_size=self.text_vocab_size,
            num_visual_codes=self.visual_tokenizer_config.codebook_size,
            num_motion_codes=self.motion_tokenizer_config.codebook_size,
            motion_tokens_per_clip=self.motion_tokenizer_config.num_tokens_per_clip,
        )

    @property
    def image_token_id(self) -> int:
        return self.token_layout.image_token_id

    @property
    def video_token_id(self) -> int:
        return self.token_layout.video_token_id


__all__ = ["VideoLaVITConfig"]
