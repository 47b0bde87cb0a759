"""The unified Video-LaVIT model: one LLaMA decoder reading and writing text, keyframe and motion tokens.

Follows the paper's section 3.2 and the reference's `modeling_video_lavit_hf.py` / `video_lavit_for_understanding.py`
/ `video_lavit_for_generation.py`. A video clip is the span `[IMG] keyframe tokens [/IMG] [MOV] 135 motion codes
[/MOV]`, an image the span `[IMG] keyframe tokens [/IMG]`. Keyframe tokens are either the keyframe tokenizer's
continuous features projected to the decoder width (`keyframe_input="features"`, the understanding checkpoint) or
its code ids (`"codes"`, the generation checkpoint); motion is always the motion tokenizer's 135 code ids.

Where the sequence is built. `VideoLaVITProcessor` builds the whole sequence, as llava_next_video's processor does:
every marker, every motion position (135 `<video>` placeholders per clip) and every keyframe position. Only the
keyframe span's length depends on the content (the keyframe tokenizer keeps a picture-dependent number of
patches), so the processor takes the keyframe tokens computed before the sequence is built
(`VideoLaVITForConditionalGeneration.tokenize_keyframes`, or `processor(..., keyframe_tokenizer=model)`): with
codes it writes their ids, with features it writes one `<image>` placeholder per feature. The model never changes
the sequence length: `forward` fills the `<video>` placeholders with the motion code ids of `motion_vectors`, and
the `<image>` placeholders with the keyframe codes or features (`keyframe_features`, or `pixel_values` tokenized
again) through `masked_scatter`. So `generate` is transformers' own, and the cache, continuation of a generation,
assisted decoding and left-padded batches behave as for any decoder.

Differences from the reference:
- batches of any size mixing videos, images and text, padded left or right; position ids count from each sample's
  first real token, as the reference does for its single sample;
- keyframes are tokenized deterministically by default (`config.keyframe_selection`; the reference samples);
- token generation for the detokenizer uses transformers' own logits processors: classifier-free guidance (the
  unconditional prompt is the phase's start token alone, as the reference), suppression of every id outside the
  phase's codes, and minimum / forced end tokens so that a clip has exactly 135 motion codes by construction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.utils import ModelOutput, can_return_tuple, logging
from transformers.utils.deprecation import deprecate_kwarg

from ..errors import InvalidInputError
from ..loading import StrictPreTrainedMixin
from ..media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer
from ..media_tokenizers.modeling_visual_tokenizer import VideoLaVITVisualTokenizer
from .configuration_video_lavit import VideoLaVITConfig

logger = logging.get_logger(__name__)

MEDIA_INPUTS = ("pixel_values", "motion_vectors", "keyframe_features")


@dataclass
class VideoLaVITKeyframeTokens(ModelOutput):
    """The keyframe tokens of a batch of keyframes, what the processor needs to build the sequence.

    Attributes:
        token_counts (`torch.LongTensor` `[keyframes]`): tokens kept for each keyframe.
        codes (`torch.LongTensor` `[sum(token_counts)]`, *optional*): the keyframe codes, keyframe after keyframe
            (`keyframe_input="codes"`).
        features (`torch.Tensor` `[sum(token_counts), hidden]`, *optional*): the features, keyframe after keyframe
            (`keyframe_input="features"`).
    """

    token_counts: torch.LongTensor | None = None
    codes: torch.LongTensor | None = None
    features: torch.Tensor | None = None

    def split_codes(self) -> list[torch.LongTensor]:
        """The codes of each keyframe (`keyframe_input="codes"`)."""
        if self.codes is None:
            raise InvalidInputError("these keyframe tokens are features, not codes")
        return list(self.codes.split(self.token_counts.tolist()))


def tokenize_keyframes(
    visual_tokenizer,
    pixel_values: torch.Tensor,
    keyframe_input: str,
    selection: str,
    generator: torch.Generator | None = None,
) -> VideoLaVITKeyframeTokens:
    """Keyframes `[keyframes, 3, 224, 224]` -> their tokens with `visual_tokenizer`: codes (`keyframe_input="codes"`,
    never with gradients) or features (`"features"`, with gradients to the tokenizer's trainable parts)."""
    if keyframe_input == "codes":
        with torch.no_grad():
            output = visual_tokenizer.tokenize(pixel_values, selection=selection, generator=generator)
        return VideoLaVITKeyframeTokens(token_counts=output.num_tokens, codes=output.indices[output.attention_mask])
    output = visual_tokenizer.encode_features(pixel_values, selection=selection, generator=generator)
    return VideoLaVITKeyframeTokens(token_counts=output.num_tokens, features=output.features[output.attention_mask])


def position_limit(config: VideoLaVITConfig) -> int | None:
    """The most positions the language model reads, or None when its rotary embedding is scaled to extend them."""
    text = config.text_config
    rope = getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type", "default")) not in (None, "default"):
        return None
    return text.max_position_embeddings


def _checking() -> bool:
    """Whether input checks run: always, except while `torch.compile` / `torch.export` trace the model."""
    return not torch.compiler.is_compiling()


class VideoLaVITPreTrainedModel(StrictPreTrainedMixin, PreTrainedModel):
    config_class = VideoLaVITConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "EvaLayer", "FusionBlock", "SpatioTemporalBlock"]
    _skip_keys_device_placement = ["cache"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.text_config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)


class VideoLaVITModel(VideoLaVITPreTrainedModel):
    """The LLaMA decoder with the keyframe and motion tokenizers: fills the media placeholders and returns the
    decoder's hidden states."""

    # Loading the base model from a folder of the model with its head leaves the head out.
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: VideoLaVITConfig):
        super().__init__(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.visual_tokenizer = VideoLaVITVisualTokenizer(config.visual_tokenizer_config)
        self.motion_tokenizer = VideoLaVITMotionTokenizer(config.motion_tokenizer_config)
        self.post_init()

    @property
    def token_layout(self):
        return self.config.token_layout

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    @property
    def pad_token_id(self) -> int:
        pad = self.config.text_config.pad_token_id
        return 0 if pad is None else int(pad)

    def tokenize_keyframes(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> VideoLaVITKeyframeTokens:
        """Keyframes -> their tokens: codes (`keyframe_input="codes"`) or decoder-width features (`"features"`).

        Args:
            pixel_values (`torch.Tensor` `[keyframes, 3, 224, 224]`): the processor's keyframes and images.
            generator (`torch.Generator`, *optional*): random source when `config.keyframe_selection="sample"`.

        Returns:
            [`VideoLaVITKeyframeTokens`]. Codes never carry gradients; features carry gradients to the keyframe
            tokenizer's trainable parts (the ViT is always run without them).
        """
        device = self.get_input_embeddings().weight.device
        config = self.config
        return tokenize_keyframes(
            self.visual_tokenizer, pixel_values.to(device), config.keyframe_input, config.keyframe_selection, generator
        )

    @torch.no_grad()
    def get_motion_codes(self, motion_vectors: torch.Tensor) -> torch.LongTensor:
        """Motion grids `[clips, 2, 24, 20, 36]` -> motion codes `[clips, 135]` (never with gradients)."""
        device = self.get_input_embeddings().weight.device
        return self.motion_tokenizer.encode(motion_vectors.to(device)).indices

    def get_placeholder_mask(self, input_ids: torch.LongTensor) -> tuple[torch.BoolTensor, torch.BoolTensor]:
        """The keyframe-token (`<image>`) and motion-code (`<video>`) placeholder positions, `[batch, length]` each."""
        layout = self.token_layout
        return input_ids == layout.image_token_id, input_ids == layout.video_token_id

    def _check_ids(self, input_ids: torch.LongTensor) -> None:
        if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2:
            raise InvalidInputError("input_ids must be a [batch, length] tensor of token ids")
        if input_ids.shape[1] == 0:
            raise InvalidInputError(
                "the prompt is empty; pass at least one token (the processor adds BOS unless add_special_tokens=False)"
            )
        if input_ids.is_floating_point():
            raise InvalidInputError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        lowest, highest = torch.stack(torch.aminmax(input_ids)).tolist()  # one device-to-host copy
        embeddings = self.config.text_config.vocab_size  # (kept up to date by resize_token_embeddings)
        end = max(embeddings, self.token_layout.video_token_id + 1)
        if lowest < 0 or highest >= end:
            raise InvalidInputError(
                f"input_ids hold id {lowest if lowest < 0 else highest}, outside the vocabulary [0, {end}); "
                "tokenize the text with this model's processor"
            )

    def _fill(
        self, name: str, mask: torch.BoolTensor, values: torch.Tensor, source: torch.Tensor, per_position: int = 1
    ) -> torch.Tensor:
        """`source.masked_scatter(mask, values)`, after checking that there is one value per placeholder."""
        if _checking() and int(mask.sum()) * per_position != values.numel():
            raise InvalidInputError(
                f"the sequence has {int(mask.sum())} {name} placeholders but the media give "
                f"{values.numel() // per_position}; build the inputs with the processor from the same media"
            )
        if per_position > 1:
            mask = mask[..., None].expand(*mask.shape, per_position)
        return source.masked_scatter(mask, values.to(device=source.device, dtype=source.dtype))

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        motion_vectors: torch.Tensor | None = None,
        keyframe_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        """The decoder's hidden states over a sequence built by the processor.

        Args:
            input_ids (`torch.LongTensor` `[batch, length]`): the processor's ids: markers, text, keyframe codes, and
                `<image>` / `<video>` placeholders where keyframe tokens / motion codes go.
            pixel_values (`torch.Tensor` `[keyframes, 3, 224, 224]`, *optional*): every keyframe whose tokens are
                placeholders, in sequence order (row after row); tokenized here.
            motion_vectors (`torch.Tensor` `[clips, 2, 24, 20, 36]`, *optional*): every clip whose motion codes are
                placeholders, in sequence order; tokenized here.
            keyframe_features (`torch.Tensor` `[tokens, hidden]`, *optional*): precomputed keyframe features (from
                `tokenize_keyframes`), one row per `<image>` placeholder, instead of `pixel_values`.
            attention_mask (`torch.Tensor` `[batch, length]`, *optional*): 1 at real tokens.
            position_ids (`torch.LongTensor` `[batch, length]`, *optional*): defaults to counting from each row's
                first real token at the first step.
            cache (`Cache`, *optional*): the key/value cache of earlier steps (`past_key_values` is its old name).
            inputs_embeds (`torch.Tensor` `[batch, length, hidden]`, *optional*): instead of `input_ids` (no media).

        Returns:
            `BaseModelOutputWithPast` with `last_hidden_state` `[batch, length, hidden]`, `cache`, and
            `hidden_states` / `attentions` when asked for.
        """
        layout = self.token_layout
        if (input_ids is None) == (inputs_embeds is None):
            raise InvalidInputError("pass exactly one of input_ids or inputs_embeds")
        # Traced by torch.compile (decoding steps, which never carry media), the cache's length is not read.
        past_length = cache.get_seq_length() if cache is not None and _checking() else 0
        if inputs_embeds is not None:
            if any(value is not None for value in (pixel_values, motion_vectors, keyframe_features)):
                raise InvalidInputError("pass media with input_ids, not with inputs_embeds")
            if _checking() and (inputs_embeds.ndim != 3 or inputs_embeds.shape[1] == 0):
                raise InvalidInputError(
                    f"inputs_embeds must be [batch, length >= 1, hidden], got {inputs_embeds.shape}"
                )
        else:
            if _checking():
                self._check_ids(input_ids)
            keyframe_mask, motion_mask = self.get_placeholder_mask(input_ids)
            has_media = any(value is not None for value in (pixel_values, motion_vectors, keyframe_features))
            if has_media and past_length > 0 and not bool((keyframe_mask | motion_mask).any()):
                # Continuing from a cache that already holds the media (decoding steps, a continued generation).
                pixel_values = motion_vectors = keyframe_features = None
            if motion_vectors is not None:
                codes = self.get_motion_codes(motion_vectors)
                input_ids = self._fill("motion", motion_mask, layout.motion_codes_to_ids(codes), input_ids)
                motion_mask = torch.zeros_like(motion_mask)
            if pixel_values is not None and keyframe_features is not None:
                raise InvalidInputError("pass pixel_values or keyframe_features, not both")
            if pixel_values is not None:
                tokens = self.tokenize_keyframes(pixel_values)
                if tokens.codes is not None:
                    ids = layout.visual_codes_to_ids(tokens.codes)
                    input_ids = self._fill("keyframe", keyframe_mask, ids, input_ids)
                    keyframe_mask = torch.zeros_like(keyframe_mask)
                else:
                    keyframe_features = tokens.features
            if keyframe_features is not None and self.config.keyframe_input == "codes":
                raise InvalidInputError(
                    "this checkpoint reads keyframes as codes; pass pixel_values or build the ids with the processor"
                )
            if _checking() and (motion_mask.any() or (keyframe_features is None and keyframe_mask.any())):
                raise InvalidInputError(
                    "input_ids hold <image> / <video> placeholders but no media fill them; pass the processor's "
                    "pixel_values / motion_vectors / keyframe_features with them"
                )
            inputs_embeds = self.get_input_embeddings()(input_ids.masked_fill(keyframe_mask, self.pad_token_id))
            if keyframe_features is not None:
                hidden = inputs_embeds.shape[-1]
                inputs_embeds = self._fill("keyframe", keyframe_mask, keyframe_features, inputs_embeds, hidden)
        limit = position_limit(self.config)
        if _checking() and limit is not None and past_length + inputs_embeds.shape[1] > limit:
            raise InvalidInputError(
                f"the sequence is {past_length + inputs_embeds.shape[1]} tokens long, more than the model's {limit} "
                "positions; shorten the prompt (fewer clips, e.g. the video processor's max_clips, or less text) or "
                "ask for fewer new tokens"
            )
        length = inputs_embeds.shape[1]
        covers = cache is None or (
            _checking() and attention_mask is not None and attention_mask.shape[-1] == past_length + length
        )
        if position_ids is None and attention_mask is not None and attention_mask.ndim == 2 and covers:
            # Positions count from each sample's first real token (left padding), as the reference does.
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]
        return self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )


QUANTIZATION_SKIP_MODULES = ["model.visual_tokenizer", "model.motion_tokenizer", "lm_head"]
"""`BitsAndBytesConfig(..., llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES)`: quantize the decoder only. The keyframe
and motion tokenizers keep their weights (quantized, they would give other codes) and so does the output head.
transformers matches these names from the start of a module's full name, so `"visual_tokenizer"` alone would not
match `model.visual_tokenizer`."""


class VideoLaVITForConditionalGeneration(VideoLaVITPreTrainedModel, GenerationMixin):
    """Video-LaVIT with its language-modelling head: understanding (`generate` on the processor's inputs) and the
    token generation that the detokenizer renders (`generate_keyframe_tokens`, `generate_motion_tokens`)."""

    _tied_weights_keys = {}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        loaded = model[0] if isinstance(model, tuple) else model
        if kwargs.get("quantization_config") is not None:
            quantized = [
                name
                for name, module in loaded.named_modules()
                if name.startswith(("model.visual_tokenizer.", "model.motion_tokenizer."))
                and type(module).__module__.startswith("bitsandbytes")
            ]
            if quantized:
                warnings.warn(
                    f"{len(quantized)} layers of the keyframe / motion tokenizers were quantized ({quantized[0]}, "
                    "...): they will give other codes than the checkpoint's. Pass "
                    "llm_int8_skip_modules=video_lavit.QUANTIZATION_SKIP_MODULES in the quantization config.",
                    UserWarning,
                    stacklevel=2,
                )
        return model

    def __init__(self, config: VideoLaVITConfig):
        super().__init__(config)
        self.model = VideoLaVITModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()
        if config.keyframe_input == "features":
            # The understanding checkpoint answers in text: marker and code ids are never generated.
            self.generation_config.suppress_tokens = list(config.token_layout.multimodal_id_range)

    @property
    def token_layout(self):
        return self.config.token_layout

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.lm_head = value

    def tokenize_keyframes(
        self, pixel_values: torch.Tensor, generator: torch.Generator | None = None
    ) -> VideoLaVITKeyframeTokens:
        """See [`VideoLaVITModel.tokenize_keyframes`]; what `processor(..., keyframe_tokenizer=model)` calls."""
        return self.model.tokenize_keyframes(pixel_values, generator=generator)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        motion_vectors: torch.Tensor | None = None,
        keyframe_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Next-token logits, and the language-modelling loss given `labels`.

        Args:
            input_ids, pixel_values, motion_vectors, keyframe_features, attention_mask, position_ids, cache,
                inputs_embeds, use_cache: as [`VideoLaVITModel.forward`].
            labels (`torch.LongTensor` `[batch, length]`, *optional*): targets aligned with `input_ids`, -100 where
                no loss is taken; placeholder positions must be -100 (their content is not an id).
            logits_to_keep (`int` or `torch.Tensor`): logits of the last `logits_to_keep` positions only (0: all).

        Returns:
            `CausalLMOutputWithPast` with `logits` `[batch, length, vocab]`, `loss`, `cache`, `hidden_states`,
            `attentions`.
        """
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            motion_vectors=motion_vectors,
            keyframe_features=keyframe_features,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        layout = self.token_layout
        if logits.shape[-1] > layout.image_token_id:
            # After `resize_token_embeddings` the head has rows for the placeholder ids: they are never predicted.
            logits[..., layout.image_token_id : layout.video_token_id + 1] = torch.finfo(logits.dtype).min
        loss = None
        if labels is not None:
            vocab_size = self.config.text_config.vocab_size
            if _checking():
                targets = labels[labels != -100]
                placeholders = (targets == layout.image_token_id) | (targets == layout.video_token_id)
                if targets.numel() and (
                    int(targets.min()) < 0 or int(targets.max()) >= vocab_size or bool(placeholders.any())
                ):
                    raise InvalidInputError(
                        f"labels must be -100 or ids in [0, {vocab_size}); set -100 at <image> / <video> placeholders"
                    )
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=vocab_size, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def generate(self, inputs: torch.Tensor | None = None, generation_config=None, **kwargs):
        """`GenerationMixin.generate`, with `max_new_tokens` lowered (and a warning) when the sequence would run
        past the model's positions. Inputs and outputs are transformers' own: `sequences` hold the prompt as the
        processor built it, then the new tokens. For answers that stop at the reference's literal `\\n`, pass
        `stop_strings=["\\\\n"], tokenizer=processor.tokenizer`."""
        prompt = inputs if inputs is not None else kwargs.get("input_ids")
        if prompt is None and kwargs.get("inputs_embeds") is not None:
            prompt = kwargs["inputs_embeds"]
        if isinstance(prompt, torch.Tensor) and prompt.ndim >= 2:
            if prompt.shape[1] == 0:
                raise InvalidInputError(
                    "the prompt is empty; pass at least one token (the processor adds BOS unless "
                    "add_special_tokens=False)"
                )
            check_length(self.config, prompt.shape[1])
            self._cap_new_tokens(prompt.shape[1], generation_config, kwargs)
        return super().generate(inputs, generation_config, **kwargs)

    def _cap_new_tokens(self, prompt_length: int, generation_config, kwargs: dict) -> None:
        limit = position_limit(self.config)
        if limit is None:
            return
        generation_config = generation_config or self.generation_config
        new_tokens = kwargs.get("max_new_tokens", generation_config.max_new_tokens)
        if new_tokens is None:
            new_tokens = kwargs.get("max_length", generation_config.max_length) - prompt_length
        if prompt_length + new_tokens > limit:
            logger.warning(
                f"the prompt is {prompt_length} tokens long and {new_tokens} new tokens were asked for, more than the "
                f"model's {limit} positions: generation stops after {limit - prompt_length} new tokens."
            )
            kwargs["max_new_tokens"] = limit - prompt_length
            kwargs.pop("max_length", None)
            if kwargs.get("min_new_tokens", generation_config.min_new_tokens or 0) > limit - prompt_length:
                kwargs["min_new_tokens"] = limit - prompt_length

    def prepare_inputs_for_generation(self, input_ids, is_first_iteration: bool | None = False, **kwargs):
        """`GenerationMixin.prepare_inputs_for_generation`, with the media passed on to `forward` at a prefill: the
        first step of a call, or any step while the cache is empty (an assistant model's first step). `forward`
        drops media whose placeholders the cache already holds (a generation continued from its cache)."""
        media = {name: kwargs.pop(name, None) for name in MEDIA_INPUTS}
        model_inputs = super().prepare_inputs_for_generation(
            input_ids, is_first_iteration=is_first_iteration, **kwargs
        )
        cache = model_inputs.get("cache")
        if is_first_iteration or cache is None or cache.get_seq_length() == 0:
            model_inputs.update({name: value for name, value in media.items() if value is not None})
        return model_inputs

    def _expand_inputs_for_generation(
        self, expand_size: int = 1, is_encoder_decoder: bool = False, input_ids=None, **model_kwargs
    ):
        """`GenerationMixin._expand_inputs_for_generation`, with the media repeated per row, not per item."""
        media = {name: model_kwargs.pop(name, None) for name in MEDIA_INPUTS}
        if expand_size > 1 and input_ids is not None:
            layout = self.token_layout
            per_row = {
                "pixel_values": (input_ids == layout.image_start_id).sum(1),
                "motion_vectors": (input_ids == layout.video_token_id).sum(1) // layout.motion_tokens_per_clip,
                "keyframe_features": (input_ids == layout.image_token_id).sum(1),
            }
            for name, value in media.items():
                if value is not None:
                    groups = value.split(per_row[name].tolist())
                    media[name] = torch.cat([group for group in groups for _ in range(expand_size)])
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update({name: value for name, value in media.items() if value is not None})
        return input_ids, model_kwargs

    def _generate_phase(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None,
        start_id: int,
        end_id: int,
        allowed: range,
        min_new_tokens: int,
        max_new_tokens: int,
        guidance_scale: float,
        **kwargs,
    ) -> tuple[torch.LongTensor, torch.LongTensor]:
        """Append `start_id` to the (left-padded) prompts and generate codes of `allowed` until `end_id`."""
        if input_ids.ndim != 2:
            raise InvalidInputError("input_ids must be a [batch, length] tensor")
        device = self.get_input_embeddings().weight.device
        input_ids = input_ids.to(device)
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(device)
        start = torch.full((input_ids.shape[0], 1), start_id, dtype=torch.long, device=device)
        prompt = torch.cat([input_ids, start], dim=1)
        check_length(self.config, prompt.shape[1], max_new_tokens)
        prompt_mask = torch.cat([attention_mask.long(), torch.ones_like(start)], dim=1)
        pad_id = self.model.pad_token_id
        sequences = self.generate(
            input_ids=prompt,
            attention_mask=prompt_mask,
            suppress_tokens=self.token_layout.ids_except(allowed, end_id),
            eos_token_id=end_id,
            forced_eos_token_id=end_id,
            pad_token_id=pad_id,
            min_new_tokens=min_new_tokens,
            max_new_tokens=max_new_tokens,
            guidance_scale=guidance_scale,
            **kwargs,
        )
        if sequences.shape[0] != prompt_mask.shape[0]:  # num_return_sequences: several rows per prompt
            prompt_mask = prompt_mask.repeat_interleave(sequences.shape[0] // prompt_mask.shape[0], dim=0)
        return sequences, prompt_mask

    def generate_keyframe_tokens(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        guidance_scale: float = 4.0,
        max_new_tokens: int | None = None,
        **kwargs,
    ) -> list[torch.LongTensor]:
        """Text (or a whole previous sequence) -> `[IMG]` keyframe codes `[/IMG]`, for the generation checkpoint.

        Only keyframe codes and `[/IMG]` can be generated; between 1 and `num_patches` (256) codes, ended by
        `[/IMG]` (forced at the limit). Classifier-free guidance contrasts the prompt with `[IMG]` alone.

        Args:
            input_ids (`torch.LongTensor` `[batch, length]`): left-padded prompts (text without BOS, as the
                reference, e.g. `processor(text=prompts, add_special_tokens=False)`).
            guidance_scale (`float`): classifier-free guidance scale (4.0 as the reference; 1 disables it).
            **kwargs: passed to `generate` (`do_sample`, `top_k`, `temperature`, `generator`-free seeding via
                `torch.manual_seed`, ...).

        Returns:
            Per prompt, its unpadded ids followed by `[IMG] codes [/IMG]`.
        """
        layout = self.token_layout
        limit = self.config.visual_tokenizer_config.num_patches
        if max_new_tokens is not None and (
            isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 2
        ):
            raise InvalidInputError(
                f"max_new_tokens counts the codes and the closing [/IMG], so it must be at least 2, got "
                f"{max_new_tokens!r}"
            )
        sequences, prompt_mask = self._generate_phase(
            input_ids,
            attention_mask,
            layout.image_start_id,
            layout.image_end_id,
            layout.visual_id_range,
            min_new_tokens=1,
            max_new_tokens=limit + 1 if max_new_tokens is None else min(max_new_tokens, limit + 1),
            guidance_scale=guidance_scale,
            **kwargs,
        )
        return _strip_padding(sequences, prompt_mask[:, :-1], layout.image_end_id)

    def generate_motion_tokens(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        guidance_scale: float = 7.0,
        **kwargs,
    ) -> list[torch.LongTensor]:
        """A sequence ending with a keyframe -> `[MOV]` 135 motion codes `[/MOV]`, for the generation checkpoint.

        Exactly `motion_tokens_per_clip` (135) motion codes by construction: only motion codes are allowed, the
        end marker is held back until then and forced right after.

        Args:
            input_ids (`torch.LongTensor` `[batch, length]`): left-padded sequences ending with `[/IMG]`.
            guidance_scale (`float`): classifier-free guidance scale (7.0 as the reference).
            **kwargs: passed to `generate` (`do_sample=False` decodes greedily, as the reference's text-to-video).

        Returns:
            Per sequence, its unpadded ids followed by `[MOV] 135 motion codes [/MOV]`.
        """
        layout = self.token_layout
        count = layout.motion_tokens_per_clip
        sequences, prompt_mask = self._generate_phase(
            input_ids,
            attention_mask,
            layout.motion_start_id,
            layout.motion_end_id,
            layout.motion_id_range,
            min_new_tokens=count,
            max_new_tokens=count + 1,
            guidance_scale=guidance_scale,
            **kwargs,
        )
        return _strip_padding(sequences, prompt_mask[:, :-1], layout.motion_end_id)


def check_length(config: VideoLaVITConfig, length: int, new_tokens: int = 0) -> None:
    """Refuse a prompt of `length` tokens (that must grow by `new_tokens`) longer than the model's positions."""
    limit = position_limit(config)
    if limit is not None and length + new_tokens > limit:
        more = f" and {new_tokens} more to generate" if new_tokens else ""
        raise InvalidInputError(
            f"the sequence is {length} tokens long{more}, more than the model's {limit} positions; shorten the "
            "prompt (fewer clips, e.g. the video processor's max_clips, or less text)"
        )


def _strip_padding(sequences: torch.LongTensor, prompt_mask: torch.Tensor, end_id: int) -> list[torch.LongTensor]:
    """Rows of `generate` output -> the real tokens: the prompt's unpadded ids, then new ids up to `end_id`."""
    prompt_length = prompt_mask.shape[1]
    rows = []
    for row, mask in zip(sequences, prompt_mask.bool()):
        new = row[prompt_length:]
        ends = (new == end_id).nonzero()
        stop = int(ends[0]) + 1 if len(ends) else len(new)
        rows.append(torch.cat([row[:prompt_length][mask], new[:stop]]))
    return rows


__all__ = [
    "QUANTIZATION_SKIP_MODULES",
    "VideoLaVITForConditionalGeneration",
    "VideoLaVITKeyframeTokens",
    "VideoLaVITModel",
    "VideoLaVITPreTrainedModel",
]
