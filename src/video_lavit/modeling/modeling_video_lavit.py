"""The unified Video-LaVIT model: one LLaMA decoder reading and writing text, keyframe and motion tokens.

Implements SPEC section 4 (paper section 3.2; reference `modeling_video_lavit_hf.py`,
`video_lavit_for_understanding.py`, `video_lavit_for_generation.py`). Each `<video>` placeholder of `input_ids` is
replaced, clip by clip, by `[IMG] keyframe [/IMG] [MOV] 135 motion ids [/MOV]`, each `<image>` by
`[IMG] keyframe [/IMG]`. The keyframe is either the keyframe tokenizer's continuous features projected to the
decoder width (`keyframe_input="features"`, the understanding checkpoint) or its code ids (`"codes"`, the
generation checkpoint); motion is always the motion tokenizer's 135 code ids.

Differences from the reference:
- batches of any size mixing videos, images and text; sequences are assembled per sample (keyframe token counts
  vary), padded left or right, with position ids counted from each sample's first real token as the reference
  does for its single sample; a sequence longer than the decoder's positions is refused with a clear error instead
  of being cut inside a visual span;
- keyframes are tokenized deterministically by default (`config.keyframe_selection`; the reference samples);
- `generate` expands the media once, before decoding, and returns the caller's prompt followed by the new tokens
  (so `output[:, input_ids.shape[1]:]` is the answer, as for other transformers models);
- token generation for the detokenizer uses transformers' own logits processors: classifier-free guidance (the
  unconditional prompt is the phase's start token alone, as the reference), suppression of every id outside the
  phase's codes, and minimum / forced end tokens so that a clip has exactly 135 motion codes by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.utils import ModelOutput, logging

from ..errors import InvalidInputError
from ..loading import StrictPreTrainedMixin
from ..tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer
from ..tokenizers.modeling_visual_tokenizer import VideoLaVITVisualTokenizer
from .configuration_video_lavit import VideoLaVITConfig

logger = logging.get_logger(__name__)

MEDIA_ARGUMENTS = (
    "keyframe_pixel_values",
    "motion_vectors",
    "num_clips",
    "pixel_values",
    "keyframe_codes",
    "image_codes",
    "motion_codes",
)


@dataclass
class VideoLaVITMultimodalInputs(ModelOutput):
    """The decoder's input after the media placeholders are expanded.

    Attributes:
        input_ids (`torch.LongTensor` `[batch, length]`): token ids; positions holding continuous keyframe features
            carry the pad id.
        attention_mask (`torch.LongTensor` `[batch, length]`): 1 at real positions.
        inputs_embeds (`torch.Tensor` `[batch, length, hidden]`, *optional*): the embeddings with the continuous
            keyframe features in place (None when every position is a token id).
        labels (`torch.LongTensor` `[batch, length]`, *optional*): the caller's labels, -100 on every inserted and
            padded position.
        feature_mask (`torch.BoolTensor` `[batch, length]`): positions holding continuous keyframe features.
    """

    input_ids: torch.LongTensor | None = None
    attention_mask: torch.LongTensor | None = None
    inputs_embeds: torch.Tensor | None = None
    labels: torch.LongTensor | None = None
    feature_mask: torch.BoolTensor | None = None


def position_limit(config: VideoLaVITConfig) -> int | None:
    """The most positions the language model reads, or None when its rotary embedding is scaled to extend them."""
    text = config.text_config
    rope = getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type", "default")) not in (None, "default"):
        return None
    return text.max_position_embeddings


class VideoLaVITPreTrainedModel(StrictPreTrainedMixin, PreTrainedModel):
    config_class = VideoLaVITConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "EvaLayer", "FusionBlock", "SpatioTemporalBlock"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with the frozen parts (the keyframe ViT and the motion tokenizer)
        frozen again: loading recreates parameters as trainable."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.freeze_tokenizers()
        return loaded

    def freeze_tokenizers(self) -> None:
        """Stop gradients to the keyframe ViT and the motion tokenizer (they are used without gradients)."""
        inner = self if isinstance(self, VideoLaVITModel) else self.model
        inner.motion_tokenizer.requires_grad_(False)
        inner.visual_tokenizer.vision_model.requires_grad_(False)

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
    """The LLaMA decoder with the keyframe and motion tokenizers, and the assembly of multimodal sequences."""

    def __init__(self, config: VideoLaVITConfig):
        super().__init__(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.visual_tokenizer = VideoLaVITVisualTokenizer(config.visual_tokenizer_config)
        self.motion_tokenizer = VideoLaVITMotionTokenizer(config.motion_tokenizer_config)
        self.post_init()
        self.freeze_tokenizers()

    @property
    def token_layout(self):
        return self.config.token_layout

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    @property
    def _pad_id(self) -> int:
        pad = self.config.text_config.pad_token_id
        return 0 if pad is None else int(pad)

    def keyframe_segments(
        self, pixel_values: torch.Tensor | None = None, codes: Sequence[torch.Tensor] | None = None
    ) -> list[tuple[torch.LongTensor, torch.Tensor | None]]:
        """Per keyframe: the ids `[IMG] ... [/IMG]` and, for continuous input, the features between the markers.

        Args:
            pixel_values (`torch.Tensor` `[n, 3, 224, 224]`): keyframes to tokenize, or
            codes (list of `torch.LongTensor`): their keyframe codes (only with `keyframe_input="codes"`).

        Returns:
            A list of `(ids, features)`: with codes, `ids` are `[IMG] code ids [/IMG]` and `features` is None; with
            features, `ids` are `[IMG] pad ... pad [/IMG]` and `features` `[k, hidden]` fill the pads.
        """
        layout = self.token_layout
        if codes is None and pixel_values is None:
            return []
        if codes is not None and self.config.keyframe_input == "features":
            raise InvalidInputError(
                "this checkpoint reads keyframes as continuous features; pass pixel values, not keyframe codes"
            )
        device = self.get_input_embeddings().weight.device
        start = torch.tensor([layout.image_start_id], device=device)
        end = torch.tensor([layout.image_end_id], device=device)
        if codes is None and self.config.keyframe_input == "features":
            output = self.visual_tokenizer.encode_features(
                pixel_values.to(device), selection=self.config.keyframe_selection
            )
            segments = []
            for features in output.split("features"):
                fillers = torch.full((features.shape[0],), self._pad_id, device=device)
                segments.append((torch.cat([start, fillers, end]), features))
            return segments
        if codes is None:
            with torch.no_grad():
                codes = self.visual_tokenizer.tokenize(
                    pixel_values.to(device), selection=self.config.keyframe_selection
                ).split("indices")
        segments = []
        for row in codes:
            row = torch.as_tensor(row, device=device).long().reshape(-1)
            if row.numel() and (int(row.min()) < 0 or int(row.max()) >= layout.num_visual_codes):
                raise InvalidInputError(f"keyframe codes must lie in [0, {layout.num_visual_codes})")
            segments.append((torch.cat([start, layout.visual_codes_to_ids(row), end]), None))
        return segments

    def motion_segments(
        self, motion_vectors: torch.Tensor | None = None, codes: torch.Tensor | None = None
    ) -> list[torch.LongTensor]:
        """Per clip: the ids `[MOV] 135 motion code ids [/MOV]`, from motion grids or precomputed motion codes."""
        layout = self.token_layout
        if codes is None and motion_vectors is None:
            return []
        device = self.get_input_embeddings().weight.device
        if codes is None:
            with torch.no_grad():
                codes = self.motion_tokenizer.encode(motion_vectors.to(device)).indices
        codes = torch.as_tensor(codes, device=device).long()
        if codes.ndim != 2 or codes.shape[1] != layout.motion_tokens_per_clip:
            raise InvalidInputError(
                f"motion codes must have shape [clips, {layout.motion_tokens_per_clip}], got {tuple(codes.shape)}"
            )
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= layout.num_motion_codes):
            raise InvalidInputError(f"motion codes must lie in [0, {layout.num_motion_codes})")
        ids = layout.motion_codes_to_ids(codes)
        start = torch.full((len(codes), 1), layout.motion_start_id, device=device)
        end = torch.full((len(codes), 1), layout.motion_end_id, device=device)
        return list(torch.cat([start, ids, end], dim=1))

    def build_multimodal_inputs(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        keyframe_pixel_values: torch.Tensor | None = None,
        motion_vectors: torch.Tensor | None = None,
        num_clips: torch.Tensor | Sequence[int] | None = None,
        pixel_values: torch.Tensor | None = None,
        keyframe_codes: Sequence[torch.Tensor] | None = None,
        image_codes: Sequence[torch.Tensor] | None = None,
        motion_codes: torch.Tensor | None = None,
        padding_side: str = "right",
    ) -> VideoLaVITMultimodalInputs:
        """Replace every `<video>` / `<image>` placeholder by its token span (see the module docstring).

        Args:
            input_ids (`torch.LongTensor` `[batch, length]`): the processor's ids, one placeholder per video/image.
            attention_mask (`torch.Tensor` `[batch, length]`, *optional*): 1 at real tokens (padding is dropped).
            labels (`torch.LongTensor` `[batch, length]`, *optional*): training targets aligned with `input_ids`.
            keyframe_pixel_values (`torch.Tensor` `[clips, 3, 224, 224]`): keyframes of every clip of every video,
                in placeholder order; or `keyframe_codes` (list of 1-D code tensors, one per clip).
            motion_vectors (`torch.Tensor` `[clips, 2, 24, 20, 36]`): motion of every clip; or `motion_codes`
                (`[clips, 135]`).
            num_clips (`torch.Tensor` `[videos]`): clips per video (may be omitted for a single video).
            pixel_values (`torch.Tensor` `[images, 3, 224, 224]`): one per `<image>`; or `image_codes`.
            padding_side (`str`): where the assembled sequences are padded (`"left"` for generation).
        """
        layout = self.token_layout
        if input_ids is None or input_ids.ndim != 2:
            raise InvalidInputError("input_ids must be a [batch, length] tensor of token ids")
        device = self.get_input_embeddings().weight.device
        input_ids = input_ids.to(device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(device).bool()
        video_positions = (input_ids == layout.video_token_id) & attention_mask
        image_positions = (input_ids == layout.image_token_id) & attention_mask
        num_videos, num_images = int(video_positions.sum()), int(image_positions.sum())

        keyframes = self.keyframe_segments(keyframe_pixel_values, keyframe_codes)
        motions = self.motion_segments(motion_vectors, motion_codes)
        images = self.keyframe_segments(pixel_values, image_codes)
        if len(keyframes) != len(motions):
            raise InvalidInputError(f"got {len(keyframes)} keyframes but {len(motions)} motion clips")
        if num_clips is None:
            if num_videos > 1:
                raise InvalidInputError(f"{num_videos} <video> placeholders: pass num_clips (clips per video)")
            num_clips = [len(keyframes)] if num_videos else []
        num_clips = [int(count) for count in torch.as_tensor(num_clips).reshape(-1).tolist()]
        if len(num_clips) != num_videos or sum(num_clips) != len(keyframes):
            raise InvalidInputError(
                f"the batch has {num_videos} <video> placeholders and {len(keyframes)} clips, but num_clips is "
                f"{num_clips}: pass one video (with its clips) per placeholder, in order"
            )
        if len(images) != num_images:
            raise InvalidInputError(
                f"the batch has {num_images} <image> placeholders but {len(images)} images; pass one per placeholder"
            )

        video_spans, clip = [], 0
        for count in num_clips:
            pieces = []
            for index in range(clip, clip + count):
                pieces += [keyframes[index], (motions[index], None)]
            video_spans.append(pieces)
            clip += count
        image_spans = [[segment] for segment in images]

        sequences, sequence_labels, sequence_feature_masks, features = [], [], [], []
        next_video = next_image = 0
        max_length = position_limit(self.config)
        for row in range(input_ids.shape[0]):
            ids = input_ids[row][attention_mask[row]]
            row_labels = labels[row].to(device)[attention_mask[row]] if labels is not None else None
            no_feature = torch.zeros(0, dtype=torch.bool, device=device)
            # (ids, labels, feature positions) of each piece of the row, in order.
            pieces: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []
            placeholders = ((ids == layout.video_token_id) | (ids == layout.image_token_id)).nonzero().flatten()
            previous = 0
            for position in [*placeholders.tolist(), len(ids)]:
                text_labels = row_labels[previous:position] if row_labels is not None else None
                pieces.append((ids[previous:position], text_labels, no_feature.new_zeros(position - previous)))
                if position == len(ids):
                    break
                if int(ids[position]) == layout.video_token_id:
                    span, next_video = video_spans[next_video], next_video + 1
                else:
                    span, next_image = image_spans[next_image], next_image + 1
                for segment_ids, segment_features in span:
                    is_feature = no_feature.new_zeros(len(segment_ids))
                    if segment_features is not None:
                        is_feature[1:-1] = True  # between [IMG] and [/IMG]
                        features.append(segment_features)
                    pieces.append((segment_ids, torch.full_like(segment_ids, -100), is_feature))
                previous = position + 1
            piece_ids, piece_labels, piece_feature_masks = zip(*pieces)
            sequence = torch.cat(piece_ids)
            if max_length is not None and sequence.shape[0] > max_length:
                raise InvalidInputError(
                    f"sample {row} is {sequence.shape[0]} tokens long with its media, more than the model's "
                    f"{max_length} positions; use fewer clips (e.g. the video processor's max_clips) or shorter text"
                )
            sequences.append(sequence)
            sequence_labels.append(torch.cat(piece_labels) if row_labels is not None else None)
            sequence_feature_masks.append(torch.cat(piece_feature_masks))

        batch, length = len(sequences), max(len(sequence) for sequence in sequences)
        padded_ids = torch.full((batch, length), self._pad_id, dtype=torch.long, device=device)
        padded_mask = torch.zeros((batch, length), dtype=torch.long, device=device)
        padded_labels = (
            torch.full((batch, length), -100, dtype=torch.long, device=device) if labels is not None else None
        )
        feature_mask = torch.zeros((batch, length), dtype=torch.bool, device=device)
        for row, sequence in enumerate(sequences):
            span = slice(length - len(sequence), length) if padding_side == "left" else slice(0, len(sequence))
            padded_ids[row, span] = sequence
            padded_mask[row, span] = 1
            feature_mask[row, span] = sequence_feature_masks[row]
            if padded_labels is not None:
                padded_labels[row, span] = sequence_labels[row]

        inputs_embeds = None
        if features:
            embeddings = self.get_input_embeddings()(padded_ids)
            # Row-major order of the feature positions is the order the features were collected in.
            inputs_embeds = embeddings.masked_scatter(
                feature_mask[..., None], torch.cat(features).to(device=embeddings.device, dtype=embeddings.dtype)
            )
        return VideoLaVITMultimodalInputs(
            input_ids=padded_ids,
            attention_mask=padded_mask,
            inputs_embeds=inputs_embeds,
            labels=padded_labels,
            feature_mask=feature_mask,
        )


@dataclass
class VideoTokensOutput(ModelOutput):
    """Output of `VideoLaVITForCausalLM.generate_video_tokens`.

    Attributes:
        sequences (`list[torch.LongTensor]`): per prompt, the whole sequence (prompt, then every generated clip);
            the prompt of a next `generate_video_tokens` call to continue the video.
        keyframe_codes (`list[list[torch.LongTensor]]`): per prompt, per clip, the keyframe codes (1..256).
        motion_codes (`list[torch.LongTensor]`): per prompt, `[clips, 135]` motion codes.
    """

    sequences: list[torch.LongTensor] | None = None
    keyframe_codes: list[list[torch.LongTensor]] | None = None
    motion_codes: list[torch.LongTensor] | None = None


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


def _pad_left(rows: Sequence[torch.LongTensor], pad_id: int) -> tuple[torch.LongTensor, torch.LongTensor]:
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long, device=rows[0].device)
    mask = torch.zeros((len(rows), length), dtype=torch.long, device=rows[0].device)
    for index, row in enumerate(rows):
        ids[index, length - len(row) :] = row
        mask[index, length - len(row) :] = 1
    return ids, mask


class VideoLaVITForCausalLM(VideoLaVITPreTrainedModel, GenerationMixin):
    """Video-LaVIT: understanding (`generate` on processor outputs) and token generation for the detokenizer."""

    _tied_weights_keys = {}

    def __init__(self, config: VideoLaVITConfig):
        super().__init__(config)
        self.model = VideoLaVITModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

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

    @staticmethod
    def _media(kwargs: dict) -> dict:
        return {name: kwargs.pop(name) for name in MEDIA_ARGUMENTS if kwargs.get(name) is not None}

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Next-token logits (and the language-modelling loss given `labels`).

        Args:
            input_ids (`torch.LongTensor` `[batch, length]`): token ids, with one `<video>` / `<image>`
                placeholder per video / image when media are passed.
            attention_mask (`torch.Tensor` `[batch, length]`): 1 at real tokens.
            labels (`torch.LongTensor` `[batch, length]`): targets aligned with `input_ids` (-100 to ignore); every
                inserted keyframe and motion position is ignored.
            keyframe_pixel_values, motion_vectors, num_clips, pixel_values, keyframe_codes, image_codes,
                motion_codes: the media (see `VideoLaVITModel.build_multimodal_inputs`); used at prefill only.
        """
        media = self._media(kwargs)
        past_length = cache.get_seq_length() if cache is not None else 0
        is_prefill = past_length == 0
        if is_prefill:
            self._check_prompt(input_ids, inputs_embeds, media)
            if not media:  # with media, `build_multimodal_inputs` checks the assembled sequence
                self._check_length((input_ids if input_ids is not None else inputs_embeds).shape[1])
        if media:
            if inputs_embeds is not None:
                raise InvalidInputError("pass media with input_ids, not with inputs_embeds")
            built = self.model.build_multimodal_inputs(input_ids, attention_mask, labels, **media)
            input_ids, attention_mask, labels = built.input_ids, built.attention_mask, built.labels
            if built.inputs_embeds is not None:
                input_ids, inputs_embeds = None, built.inputs_embeds
            position_ids = None
        if position_ids is None and attention_mask is not None and is_prefill:
            # Positions count from each sample's first real token (left padding), as the reference does.
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        outputs = self.model.language_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _check_prompt(self, input_ids, inputs_embeds, media: dict) -> None:
        """Refuse prompts the model cannot read: empty, ids outside the vocabulary, placeholders without media."""
        if input_ids is None and inputs_embeds is None:
            raise InvalidInputError("pass input_ids (or inputs_embeds)")
        if input_ids is None:
            if inputs_embeds.ndim != 3 or inputs_embeds.shape[1] == 0:
                raise InvalidInputError(
                    f"inputs_embeds must be [batch, length >= 1, hidden], got {inputs_embeds.shape}"
                )
            return
        if not isinstance(input_ids, torch.Tensor) or input_ids.ndim != 2:
            raise InvalidInputError("input_ids must be a [batch, length] tensor of token ids")
        if input_ids.shape[1] == 0:
            raise InvalidInputError(
                "the prompt is empty; pass at least one token (the processor adds BOS unless add_special_tokens=False)"
            )
        if input_ids.is_floating_point():
            raise InvalidInputError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        layout = self.token_layout
        lowest, highest = torch.stack(torch.aminmax(input_ids)).tolist()  # one device-to-host copy
        if lowest < 0 or highest >= layout.vocab_size + 2:
            raise InvalidInputError(
                f"input_ids hold id {lowest if lowest < 0 else highest}, outside the vocabulary [0, "
                f"{layout.vocab_size + 2}); tokenize the text with this model's processor"
            )
        # Decoding steps only see generated ids, which are in the vocabulary: check the prompt once.
        if not media and highest >= layout.vocab_size:
            raise InvalidInputError(
                "input_ids hold <image> / <video> placeholders but no images or videos were given; pass the "
                "processor's keyframe_pixel_values / motion_vectors / pixel_values (or codes) with them"
            )

    def _check_length(self, length: int, new_tokens: int = 0) -> None:
        """Refuse a prompt of `length` tokens (that must grow by `new_tokens`) longer than the model's positions."""
        limit = position_limit(self.config)
        if limit is not None and length + new_tokens > limit:
            more = f" and {new_tokens} more to generate" if new_tokens else ""
            raise InvalidInputError(
                f"the sequence is {length} tokens long{more}, more than the model's {limit} positions; shorten the "
                "prompt (fewer clips, e.g. the video processor's max_clips, or less text)"
            )

    def _cap_new_tokens(self, prompt_length: int, kwargs: dict) -> None:
        """Lower `max_new_tokens` so that generation stops when the sequence fills the model's positions."""
        limit = position_limit(self.config)
        if limit is None:
            return
        generation_config = kwargs.get("generation_config") or self.generation_config
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

    @torch.no_grad()
    def generate(
        self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs
    ):
        """`GenerationMixin.generate`, expanding the media of the prompt once before decoding.

        With media (the processor's `keyframe_pixel_values`, `motion_vectors`, `num_clips`, `pixel_values`, or codes),
        the output is the caller's `input_ids` followed by the generated tokens, so `output[:, input_ids.shape[1]:]`
        is the answer. With `keyframe_input="features"` (the understanding checkpoint) marker and code ids are
        always suppressed. For answers that stop at the reference's literal `\\n`, pass
        `stop_strings=["\\\\n"], tokenizer=processor.tokenizer`.
        """
        media = self._media(kwargs)
        if self.config.keyframe_input == "features":
            # The understanding checkpoint answers in text: marker and code ids are never generated.
            suppressed = kwargs.get("suppress_tokens") or self.generation_config.suppress_tokens or []
            kwargs["suppress_tokens"] = sorted(set(suppressed) | set(self.token_layout.multimodal_id_range))
        if not media:
            if isinstance(input_ids, torch.Tensor) and input_ids.ndim == 2:
                self._check_prompt(input_ids, None, media)
                self._check_length(input_ids.shape[1])
                self._cap_new_tokens(input_ids.shape[1], kwargs)
            return super().generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if kwargs.get("inputs_embeds") is not None:
            raise InvalidInputError("pass media with input_ids, not with inputs_embeds")
        built = self.model.build_multimodal_inputs(input_ids, attention_mask, padding_side="left", **media)
        self._cap_new_tokens(built.input_ids.shape[1], kwargs)
        if built.inputs_embeds is not None:
            kwargs["inputs_embeds"] = built.inputs_embeds
        outputs = super().generate(input_ids=built.input_ids, attention_mask=built.attention_mask, **kwargs)
        sequences = outputs if isinstance(outputs, torch.Tensor) else outputs.sequences
        prompt = input_ids.to(sequences.device).repeat_interleave(sequences.shape[0] // input_ids.shape[0], dim=0)
        sequences = torch.cat([prompt, sequences[:, built.input_ids.shape[1] :]], dim=1)
        if isinstance(outputs, torch.Tensor):
            return sequences
        outputs.sequences = sequences
        return outputs

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
        self._check_length(prompt.shape[1], max_new_tokens)
        prompt_mask = torch.cat([attention_mask.long(), torch.ones_like(start)], dim=1)
        pad_id = self.model._pad_id
        sequences = super().generate(
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

    def generate_video_tokens(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        num_clips: int = 1,
        image_codes: Sequence[torch.Tensor] | None = None,
        keyframe_guidance_scale: float = 4.0,
        motion_guidance_scale: float = 7.0,
        keyframe_kwargs: dict | None = None,
        motion_kwargs: dict | None = None,
    ) -> VideoTokensOutput:
        """Clips in a row: keyframe, then motion, each clip prompted by the whole sequence so far (SPEC section 4).

        Args:
            input_ids (`torch.LongTensor` `[batch, length]`): left-padded text prompts (no BOS), or previous
                `VideoTokensOutput.sequences` padded with `_pad_left` to continue a video.
            num_clips (`int`): clips to generate per prompt.
            image_codes (list of `torch.LongTensor`, *optional*): image-to-video: one keyframe's codes per prompt,
                used as the first clip's keyframe instead of generating it; the prompt becomes
                `[IMG] codes [/IMG]` followed by the text, as the reference's.
            keyframe_kwargs, motion_kwargs (`dict`): `generate` options of each phase (the reference samples
                keyframes with top-k 50 and decodes text-to-video motion greedily; image-to-video samples motion).
        """
        if num_clips < 1:
            raise InvalidInputError(f"num_clips must be at least 1, got {num_clips}")
        layout, pad_id = self.token_layout, self.model._pad_id
        device = self.get_input_embeddings().weight.device
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        rows = [row[mask.bool()].to(device) for row, mask in zip(input_ids, attention_mask)]
        keyframe_codes: list[list[torch.LongTensor]] = [[] for _ in rows]
        motion_codes: list[list[torch.LongTensor]] = [[] for _ in rows]
        if image_codes is not None:
            if len(image_codes) != len(rows):
                raise InvalidInputError(f"got {len(image_codes)} keyframes for {len(rows)} prompts")
            # The keyframe comes first, then the text, as the reference's image-to-video prompts.
            segments = self.model.keyframe_segments(codes=image_codes)
            rows = [torch.cat([segment, row]) for row, (segment, _) in zip(rows, segments)]
        for clip in range(num_clips):
            if clip > 0 or image_codes is None:
                ids, mask = _pad_left(rows, pad_id)
                rows = self.generate_keyframe_tokens(
                    ids, mask, guidance_scale=keyframe_guidance_scale, **(keyframe_kwargs or {})
                )
            ids, mask = _pad_left(rows, pad_id)
            rows = self.generate_motion_tokens(
                ids, mask, guidance_scale=motion_guidance_scale, **(motion_kwargs or {})
            )
            for index, row in enumerate(rows):
                keyframe_end = int((row == layout.image_end_id).nonzero()[-1])
                keyframe_start = int((row[:keyframe_end] == layout.image_start_id).nonzero()[-1])
                keyframe_codes[index].append(layout.ids_to_visual_codes(row[keyframe_start + 1 : keyframe_end]))
                motion_codes[index].append(layout.ids_to_motion_codes(row[-1 - layout.motion_tokens_per_clip : -1]))
        return VideoTokensOutput(
            sequences=rows,
            keyframe_codes=keyframe_codes,
            motion_codes=[torch.stack(codes) for codes in motion_codes],
        )


__all__ = [
    "VideoLaVITForCausalLM",
    "VideoLaVITModel",
    "VideoLaVITMultimodalInputs",
    "VideoLaVITPreTrainedModel",
    "VideoTokensOutput",
]
