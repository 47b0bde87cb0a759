"""`VideoLaVITProcessor`: prompts, videos and images -> the inputs of the Video-LaVIT language model.

Wraps the LLaMA tokenizer with the Video-LaVIT tokens (`tokenization_video_lavit`) and `VideoLaVITVideoProcessor`:

- Prompts are tokenized as the reference's `tokenizer_image_token` (VideoLaVIT/models/video_lavit_for_understanding
  .py): the text is split on the `<image>` / `<video>` placeholder strings, each chunk is tokenized on its own (so
  each gets LLaMA's `▁` word prefix), only the first chunk keeps its BOS, and one placeholder id goes between chunks.
- Videos go through the video processor (keyframes and motion vectors per clip), images through its
  `preprocess_keyframe` (the reference's `LaVITImageProcessor`).
- The chat template renders the reference's `default_conversation` (VideoLaVIT/conversation.py, separator style
  TWO): `"{system} USER: <video>\\n{question} ASSISTANT:"`, answers followed by the literal `" \\\\n </s>"`.
- `post_process_answer` cuts answers at the literal two characters backslash-n and strips them, as the reference;
  `post_process_generation` splits generated ids into text, keyframe codes and motion codes.

Deliberate differences from the reference:
- Placeholders are real token ids just past the language model's vocabulary (`layout.image_token_id`,
  `layout.video_token_id`) instead of -200 / -201. The processor builds the whole sequence (every marker, keyframe
  token and motion position), given the keyframe tokens (their number depends on the picture); the model only
  fills placeholders, it never changes the sequence length.
- Chunks are tokenized with `split_special_tokens=True`: text can never produce a marker, code or BOS id, whereas
  the reference's tokenizer had no strings for them at all. In a prompt, the `<image>` / `<video>` strings are
  placeholders and `</s>` is EOS (the chat template writes it after every answer, and the reference's tokenizer
  reads it so).
- What a user wrote never becomes a special id: `apply_chat_template` wraps every `</s>` and `<s>` in message
  texts, and every `<image>` / `<video>` in text parts of a message, in transformers' control-token markers
  (`mark_control_tokens`), and marked text is tokenized as plain text. Only the template's own structure yields
  EOS and placeholder ids. (A message given as one string may hold `<image>` / `<video>` placeholders, as LLaVA's
  conversation data does; give media as `{"type": "video"}` parts to keep user text out of it.)
- Images are read from local files (or given as PIL images / uint8 arrays); URLs and base64 strings are refused,
  nothing is downloaded.
- One batch may mix images and videos and may hold several placeholders per prompt; they map to the given images
  and videos in batch order. The reference took either images or videos, one per prompt.
- Batches are padded on the left by default (pad = unk, attention mask 0), as generation needs; the reference sets
  `padding_side='left'` but then pads with `pad_sequence`, i.e. on the right. `padding_side="right"` gives that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jinja2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from transformers import PreTrainedTokenizerBase
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin
from transformers.utils.chat_template_utils import mark_control_tokens

from ..checks import check_finite
from ..errors import InvalidInputError, UnknownOptionError
from ..loading import check_local_folder
from ..media_tokenizers.token_layout import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, VideoLaVITTokenLayout
from .tokenization_video_lavit import layout_from_tokenizer
from .video_processing_video_lavit import VideoLaVITVideoProcessor
from .video_sources import open_regular_file

DEFAULT_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# The reference's `default_conversation.sep2` is the Python string " \\n </s>": a space, a backslash, "n", a space,
# then "</s>". In the Jinja string literal below the backslash is written twice.
ANSWER_SEPARATOR = " \\n </s>"
ANSWER_STOP_STRING = "\\n"

# `Conversation.get_prompt` with `SeparatorStyle.TWO`: system + " ", then per message `ROLE: content` + " " (user) or
# + sep2 (assistant), and "ASSISTANT:" as the generation prompt. Media parts of a message render as their
# placeholder and a newline, before the message's text parts (joined with a space).
DEFAULT_CHAT_TEMPLATE = (
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}"
    "{%- for part in content if part['type'] in ['image', 'video'] -%}"
    "{{- '<' + part['type'] + '>' + '\\n' -}}"
    "{%- endfor -%}"
    "{{- content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') -}}"
    "{%- endif -%}"
    "{%- endmacro -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{{- render_content(messages[0]['content']) -}}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{{- '" + DEFAULT_SYSTEM_PROMPT.replace("'", "\\'") + "' -}}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{{- ' ' -}}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- 'USER: ' + render_content(message['content']) + ' ' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- 'ASSISTANT: ' + render_content(message['content']) + ' \\\\n </s>' -}}"
    "{%- else -%}"
    "{{- raise_exception('Video-LaVIT conversations have user and assistant messages after an optional system "
    "message, got role ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)

_PLACEHOLDER_PATTERN = re.compile(f"({re.escape(IMAGE_PLACEHOLDER)}|{re.escape(VIDEO_PLACEHOLDER)})")
# The private-use characters transformers' `mark_control_tokens` wraps user-written control tokens in.
_MARK_START, _MARK_END = mark_control_tokens("x", re.compile("x")).split("x")
_MARKED_PATTERN = f"{re.escape(_MARK_START)}(.*?){re.escape(_MARK_END)}|[{re.escape(_MARK_START + _MARK_END)}]"
# Image files read from paths, by PIL format name; nothing else is decoded (no EPS through Ghostscript, ...).
IMAGE_FORMATS = (
    "PNG",
    "JPEG",
    "MPO",
    "WEBP",
    "GIF",
    "BMP",
    "TIFF",
    "PPM",
    "AVIF",
    "ICO",
    "TGA",
    "JPEG2000",
    "PSD",
    "QOI",
)
_URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(//|[^\\/])")


@dataclass
class VideoLaVITGeneratedSequence:
    """One generated sequence split into its parts (see [`VideoLaVITProcessor.post_process_generation`]).

    Attributes:
        text (`str`): the decoded text ids, without special, marker, code or placeholder tokens.
        keyframe_codes (`list[torch.LongTensor]`): keyframe codebook indices, one tensor per `[IMG] ... [/IMG]` span.
        motion_codes (`list[torch.LongTensor]`): motion codebook indices, one tensor per `[MOV] ... [/MOV]` span.
        clips (`list[tuple[torch.LongTensor | None, torch.LongTensor | None]]`): `(keyframe_codes, motion_codes)`
            per clip in order: a keyframe span and the motion span right after it; a keyframe without motion (an
            image) gives `None` motion, a motion span without a keyframe before it gives `None` keyframe codes.
    """

    text: str
    keyframe_codes: list[torch.Tensor] = field(default_factory=list)
    motion_codes: list[torch.Tensor] = field(default_factory=list)
    clips: list[tuple[torch.Tensor | None, torch.Tensor | None]] = field(default_factory=list)


class VideoLaVITProcessor(ProcessorMixin):
    r"""Turns chat prompts, videos and images into the inputs of the Video-LaVIT language model, and its outputs back.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): a LLaMA tokenizer with the Video-LaVIT tokens
            (see `add_video_lavit_tokens`).
        video_processor ([`VideoLaVITVideoProcessor`]): cuts videos into clips and preprocesses keyframes and images.
        chat_template (`str`, *optional*): Jinja chat template (defaults to the reference's conversation format).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None = None,
        video_processor: VideoLaVITVideoProcessor | None = None,
        chat_template: str | None = None,
        **kwargs,
    ):
        if tokenizer is None:
            raise InvalidInputError("VideoLaVITProcessor needs a tokenizer with the Video-LaVIT tokens.")
        if video_processor is None:
            video_processor = VideoLaVITVideoProcessor()
        if chat_template is None:
            chat_template = DEFAULT_CHAT_TEMPLATE
        super().__init__(tokenizer, video_processor, chat_template=chat_template, **kwargs)
        self.layout: VideoLaVITTokenLayout = layout_from_tokenizer(tokenizer)
        self.image_token = IMAGE_PLACEHOLDER
        self.video_token = VIDEO_PLACEHOLDER
        self.image_token_id = self.layout.image_token_id
        self.video_token_id = self.layout.video_token_id

    def __call__(
        self,
        text: str | list[str] | None = None,
        videos=None,
        images=None,
        keyframe_tokenizer=None,
        keyframe_tokens=None,
        motion_codes: torch.Tensor | None = None,
        return_pixel_values: bool = False,
        padding: bool | str = True,
        padding_side: str | None = None,
        truncation: bool | None = None,
        max_length: int | None = None,
        return_tensors: str | None = "pt",
        add_special_tokens: bool = True,
        text_kwargs: dict | None = None,
        videos_kwargs: dict | None = None,
        images_kwargs: dict | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Build the language model's whole input sequence: prompts, and the spans of the videos and images in them.

        Each `<video>` of a prompt becomes, clip after clip, `[IMG] keyframe tokens [/IMG] [MOV] 135 motion
        positions [/MOV]`; each `<image>` becomes `[IMG] keyframe tokens [/IMG]`. The motion positions are `<video>`
        placeholders that the model fills from `motion_vectors` (or, given `motion_codes`, the code ids). How many
        tokens a keyframe has depends on the picture, so the keyframe tokens must be computed first: pass the model
        as `keyframe_tokenizer` (its `tokenize_keyframes` is called), or its result as `keyframe_tokens`. Codes are
        written as ids; features give one `<image>` placeholder each and are returned as `keyframe_features`.

        Args:
            text (`str` or `list[str]`, *optional*): prompts with `<image>` / `<video>` placeholders.
            videos (*optional*): one video (path, bytes, file object) or a list, one per `<video>` placeholder of the
                whole batch, in order (a list of per-prompt lists is flattened); or the video processor's output
                for them (`keyframe_pixel_values`, `motion_vectors`, `num_clips`).
            images (*optional*): one image (PIL, uint8 `[H, W, 3]` array, or the path of a local image file) or a
                list, one per `<image>` placeholder; or their preprocessed `[images, 3, 224, 224]` float tensor.
            keyframe_tokenizer (*optional*): an object with `tokenize_keyframes(pixel_values)`, such as
                [`VideoLaVITForConditionalGeneration`].
            keyframe_tokens ([`VideoLaVITKeyframeTokens`], *optional*): the tokens of every keyframe: the videos'
                clips (video after video), then the images.
            motion_codes (`torch.LongTensor` `[clips, 135]`, *optional*): the motion codes of every clip, to write
                them as ids instead of placeholders.
            return_pixel_values (`bool`, *optional*, defaults to `False`): with features, return the keyframes'
                `pixel_values` in sequence order instead of `keyframe_features`, so that the model computes the
                features itself, with their gradient (training the keyframe projection).
            padding (`bool` or `str`, *optional*, defaults to `True`): `True` / `"longest"`, `"max_length"`, or
                `False` / `"do_not_pad"`.
            padding_side (`str`, *optional*): `"left"` (the default, for generation) or `"right"`.
            truncation (`bool`, *optional*): cut sequences longer than `max_length`, only in text after the last
                media span (a cut inside or before a span is an error: media are never cut).
            max_length (`int`, *optional*): the length of `padding="max_length"` and `truncation`.
            return_tensors (`str`, *optional*, defaults to `"pt"`): `"pt"`, `"np"` or `None` (ids as lists; the
                media stay tensors).
            add_special_tokens (`bool`, *optional*, defaults to `True`): put BOS at the start of each prompt.
            text_kwargs, videos_kwargs, images_kwargs (`dict`, *optional*): the same options grouped as
                transformers' processors take them.
            **kwargs: options of the video processor (e.g. `max_clips`), also used for images; any other option
                is an error. (`sanitize_control_tokens` is accepted for transformers' `apply_chat_template`: text
                marked by `mark_control_tokens` is always tokenized as plain text.)

        Returns:
            `BatchFeature`. With `text`: `input_ids` and `attention_mask` `[batch, length]`, `motion_vectors`
            `[clips, 2, 24, 20, 36]` (clips whose motion positions are placeholders, in sequence order) and
            `keyframe_features` `[tokens, hidden]` (features, in sequence order). Without `text`: the video
            processor's `keyframe_pixel_values`, `motion_vectors`, `num_clips`, and `pixel_values` of the images.

        Raises:
            `InvalidInputError`: the placeholders do not match the videos / images, keyframe tokens are missing or
                do not match the keyframes, an option is out of range, or an input has the wrong type.
        """
        options = dict(padding=padding, padding_side=padding_side, truncation=truncation, max_length=max_length)
        options.update(return_tensors=return_tensors, add_special_tokens=add_special_tokens)
        for group in (text_kwargs, videos_kwargs, images_kwargs):
            if group is not None and not isinstance(group, dict):
                raise InvalidInputError(f"text_kwargs / videos_kwargs / images_kwargs must be dicts, got {group!r}.")
            for name, value in (group or {}).items():
                (options if name in options else kwargs)[name] = value
        padding, padding_side, truncation, max_length = (options[name] for name in list(options)[:4])
        return_tensors, add_special_tokens = options["return_tensors"], options["add_special_tokens"]
        if text is None and videos is None and images is None:
            raise InvalidInputError("VideoLaVITProcessor needs at least one of `text`, `videos` or `images`.")
        if kwargs.pop("audio", None) is not None:
            raise InvalidInputError("Video-LaVIT takes no audio.")
        kwargs.pop("sanitize_control_tokens", None)  # marked text is always plain text
        unknown = set(kwargs) - set(self.video_processor.valid_kwargs.__annotations__)
        if unknown:
            raise UnknownOptionError(
                f"{type(self).__name__} got unexpected options: {', '.join(sorted(unknown))}; see its docstring for "
                "the options it takes"
            )
        if padding_side not in (None, "left", "right"):
            raise InvalidInputError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        if return_tensors not in (None, "pt", "np"):
            raise InvalidInputError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}.")
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise InvalidInputError(
                f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}."
            )
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise InvalidInputError(f"max_length must be a positive integer, got {max_length!r}.")
        if (padding == "max_length" or truncation) and max_length is None:
            raise InvalidInputError("padding='max_length' and truncation need max_length.")
        if isinstance(videos, Mapping) and "keyframe_pixel_values" in videos:  # the video processor's output
            clips = _checked_clips(videos)
            video_list = list(range(len(clips["num_clips"])))
        else:
            video_list = _as_list(videos, "videos")
            clips = self.video_processor(video_list, return_tensors="pt", **kwargs) if video_list else None
        if isinstance(images, torch.Tensor) and images.is_floating_point():  # preprocessed pixel values
            if images.ndim != 4 or images.shape[1] != 3:
                raise InvalidInputError(
                    f"preprocessed images must be a [images, 3, H, W] tensor, got shape {tuple(images.shape)}."
                )
            image_pixels, image_list = images, list(range(len(images)))
        else:
            image_list = _as_images(images)
            image_pixels = (
                torch.stack([self.video_processor.preprocess_keyframe(image, **kwargs) for image in image_list])
                if image_list
                else None
            )
        if text is None:
            data = dict(clips.data) if clips is not None else {}
            if image_pixels is not None:
                data["pixel_values"] = image_pixels
            return BatchFeature(data=data, tensor_type=return_tensors)

        texts = [text] if isinstance(text, str) else list(text)
        if not texts or not all(isinstance(sample, str) for sample in texts):
            raise InvalidInputError("`text` must be a string or a non-empty list of strings.")
        prompts = [self._tokenize_prompt(sample, add_special_tokens) for sample in texts]
        for name, token_id, inputs in (
            ("video", self.video_token_id, video_list),
            ("image", self.image_token_id, image_list),
        ):
            count = sum(ids.count(token_id) for ids in prompts)
            if count != len(inputs):
                raise InvalidInputError(
                    f"the prompts hold {count} <{name}> placeholder(s) but {len(inputs)} {name}(s) were given; "
                    f"put one <{name}> in the text per {name}, in the order the {name}s are passed."
                )
        num_clips = clips["num_clips"].tolist() if clips is not None else []
        keyframes = self._keyframe_spans(clips, image_pixels, keyframe_tokenizer, keyframe_tokens)
        motion = self._motion_spans(sum(num_clips), motion_codes)
        input_ids, features, motion_order, keyframe_order = self._expand(prompts, num_clips, keyframes, motion)
        if truncation:
            input_ids = [self._truncate(ids, max_length, row) for row, ids in enumerate(input_ids)]
        if padding in (False, "do_not_pad") and return_tensors and len({len(ids) for ids in input_ids}) > 1:
            raise InvalidInputError(
                "the prompts have different lengths and cannot form one tensor without padding; pass padding=True "
                "or return_tensors=None."
            )
        encoded = self.tokenizer.pad(
            {"input_ids": input_ids},
            padding=padding,
            max_length=max_length,
            padding_side=padding_side or "left",
            return_attention_mask=True,
        )
        data = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if motion_order:
            data["motion_vectors"] = clips["motion_vectors"][motion_order]
        if features and return_pixel_values:
            pixels = [
                value
                for value in (clips["keyframe_pixel_values"] if clips else None, image_pixels)
                if value is not None
            ]
            data["pixel_values"] = torch.cat(pixels)[keyframe_order]
        elif features:
            features = torch.cat(features)
            data["keyframe_features"] = features.float() if return_tensors == "np" else features
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _keyframe_spans(
        self, clips, image_pixels, keyframe_tokenizer, keyframe_tokens
    ) -> list[tuple[list, torch.Tensor | None]]:
        """Per keyframe (the videos' clips, then the images): the ids between `[IMG]` and `[/IMG]`, and the
        features that fill them (None for codes)."""
        pixels = [
            value
            for value in (clips["keyframe_pixel_values"] if clips is not None else None, image_pixels)
            if value is not None
        ]
        if not pixels:
            return []
        pixel_values = torch.cat(pixels)
        if keyframe_tokens is None:
            if keyframe_tokenizer is None:
                raise InvalidInputError(
                    "how many tokens a keyframe has depends on the picture: pass the model as keyframe_tokenizer "
                    "(processor(..., keyframe_tokenizer=model)) or its tokenize_keyframes(pixel_values) result as "
                    "keyframe_tokens"
                )
            if not callable(getattr(keyframe_tokenizer, "tokenize_keyframes", None)):
                raise InvalidInputError(
                    f"keyframe_tokenizer must have a tokenize_keyframes method (a Video-LaVIT model), got "
                    f"{type(keyframe_tokenizer).__name__}"
                )
            self.check_layout(keyframe_tokenizer)
            with torch.no_grad():
                keyframe_tokens = keyframe_tokenizer.tokenize_keyframes(pixel_values)
        counts = torch.as_tensor(keyframe_tokens.token_counts).reshape(-1).tolist()
        if len(counts) != len(pixel_values):
            raise InvalidInputError(
                f"keyframe_tokens hold {len(counts)} keyframes, but the videos and images have {len(pixel_values)}"
            )
        if not all(isinstance(count, int) and count >= 0 for count in counts):
            raise InvalidInputError(f"keyframe_tokens.token_counts must be non-negative integers, got {counts}")
        codes, features = keyframe_tokens.codes, keyframe_tokens.features
        if (codes is None) == (features is None):
            raise InvalidInputError("keyframe_tokens must hold either codes or features")
        values = codes if codes is not None else features
        if len(values) != sum(counts):
            raise InvalidInputError(
                f"keyframe_tokens hold {len(values)} tokens, but their token_counts add up to {sum(counts)}"
            )
        if features is not None:
            check_finite(features, "keyframe_tokens.features")
        # Codes become id lists here; features stay on their device for the model.
        values = values.detach().cpu() if codes is not None else values.detach()
        spans = []
        for part in values.split(counts):
            if codes is not None:
                if part.numel() and (int(part.min()) < 0 or int(part.max()) >= self.layout.num_visual_codes):
                    raise InvalidInputError(f"keyframe codes must lie in [0, {self.layout.num_visual_codes})")
                spans.append((self.layout.visual_codes_to_ids(part.long()).tolist(), None))
            else:
                spans.append(([self.image_token_id] * len(part), part))
        return spans

    def check_layout(self, model) -> None:
        """Refuse a model whose token layout (from its configuration) is not this processor's (from the
        tokenizer's vocabulary): their ids would mean different things."""
        layout = getattr(model, "token_layout", None)
        if layout is not None and layout != self.layout:
            raise InvalidInputError(
                f"the model's token layout ({layout}) is not the processor's ({self.layout}); load the processor "
                "saved with this model"
            )

    def _motion_spans(self, total_clips: int, motion_codes) -> list[list[int] | None]:
        """Per clip: the ids between `[MOV]` and `[/MOV]` from `motion_codes`, or None for placeholders."""
        count = self.layout.motion_tokens_per_clip
        if motion_codes is None:
            return [None] * total_clips
        motion_codes = torch.as_tensor(motion_codes).long()
        if motion_codes.shape != (total_clips, count):
            raise InvalidInputError(
                f"motion_codes must have shape [{total_clips}, {count}] (one row per clip), got "
                f"{tuple(motion_codes.shape)}"
            )
        if motion_codes.numel() and (
            int(motion_codes.min()) < 0 or int(motion_codes.max()) >= self.layout.num_motion_codes
        ):
            raise InvalidInputError(f"motion codes must lie in [0, {self.layout.num_motion_codes})")
        return self.layout.motion_codes_to_ids(motion_codes).tolist()

    def _expand(self, prompts, num_clips, keyframes, motion):
        """Replace each placeholder of each prompt by its spans; returns the ids, the features in sequence order,
        the clips (indices) whose motion positions are placeholders and the keyframes (indices), in sequence
        order."""
        layout = self.layout
        video_starts = [sum(num_clips[:index]) for index in range(len(num_clips))]
        total_clips = sum(num_clips)
        features, motion_order, keyframe_order, rows = [], [], [], []
        next_video = next_image = 0
        placeholder_motion = [self.video_token_id] * layout.motion_tokens_per_clip

        def keyframe(index):
            ids, values = keyframes[index]
            keyframe_order.append(index)
            if values is not None:
                features.append(values)
            return [layout.image_start_id, *ids, layout.image_end_id]

        for prompt in prompts:
            row = []
            for token_id in prompt:
                if token_id == self.video_token_id:
                    first = video_starts[next_video]
                    for clip in range(first, first + num_clips[next_video]):
                        if motion[clip] is None:
                            motion_order.append(clip)
                        row += keyframe(clip)
                        row += [layout.motion_start_id, *(motion[clip] or placeholder_motion), layout.motion_end_id]
                    next_video += 1
                elif token_id == self.image_token_id:
                    row += keyframe(total_clips + next_image)
                    next_image += 1
                else:
                    row.append(token_id)
            rows.append(row)
        return rows, features, motion_order, keyframe_order

    def _truncate(self, ids: list[int], max_length: int, row: int) -> list[int]:
        """Cut `ids` to `max_length`, only in text after the last media span."""
        if len(ids) <= max_length:
            return ids
        ends = {self.layout.image_end_id, self.layout.motion_end_id}
        last_span_end = max((position for position, token_id in enumerate(ids) if token_id in ends), default=-1)
        if last_span_end >= max_length:
            raise InvalidInputError(
                f"sample {row} is {len(ids)} tokens long with its media; cutting it to max_length={max_length} would "
                "cut a keyframe or motion span. Use fewer clips (the video processor's max_clips) or a larger "
                "max_length"
            )
        return ids[:max_length]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`ProcessorMixin.from_pretrained`; a folder that does not exist is an error at once, never a download."""
        check_local_folder(pretrained_model_name_or_path, "processor")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def _tokenize_prompt(self, text: str, add_special_tokens: bool) -> list[int]:
        """The reference's `tokenizer_image_token`, for both placeholders, with user text kept as plain text.

        The prompt is split at the placeholder strings and at the tokenizer's EOS string (`</s>`, which the chat
        template writes after every answer); each chunk between them is tokenized on its own (its own `▁` word
        prefix) as plain text, and only the prompt starts with BOS. Text wrapped in transformers' control-token
        markers (what `apply_chat_template` does to user-written control strings) stays inside its chunk as plain
        text, without the markers.
        """
        separators = [IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER]
        eos_token, eos_token_id = self.tokenizer.eos_token, self.tokenizer.eos_token_id
        if eos_token and eos_token_id is not None:
            separators.append(eos_token)
        separator_pattern = "|".join(re.escape(separator) for separator in separators)
        pattern = re.compile(f"{_MARKED_PATTERN}|(?P<separator>{separator_pattern})", re.DOTALL)
        chunks, found, current, position = [], [], [], 0
        for match in pattern.finditer(text):
            current.append(text[position : match.start()])
            position = match.end()
            if match.group("separator") is not None:
                chunks.append("".join(current))
                found.append(match.group("separator"))
                current = []
            elif match.group(1) is not None:  # a marked control string: plain text
                current.append(match.group(1))
            # else: a lone marker, dropped
        current.append(text[position:])
        chunks.append("".join(current))
        chunk_ids = self.tokenizer(chunks, add_special_tokens=False, split_special_tokens=True, padding=False)[
            "input_ids"
        ]
        bos_token_id = self.tokenizer.bos_token_id
        input_ids = [bos_token_id] if add_special_tokens and bos_token_id is not None else []
        input_ids.extend(chunk_ids[0])
        separator_ids = {IMAGE_PLACEHOLDER: self.image_token_id, VIDEO_PLACEHOLDER: self.video_token_id}
        for separator, ids in zip(found, chunk_ids[1:]):
            input_ids.append(separator_ids.get(separator, eos_token_id))
            input_ids.extend(ids)
        return input_ids

    def apply_chat_template(self, conversation, chat_template: str | None = None, **kwargs):
        """`ProcessorMixin.apply_chat_template`, with what users wrote kept out of the prompt's structure.

        Every `</s>` / `<s>` in the messages' texts, and every `<image>` / `<video>` in text parts of messages
        (content given as a list of parts), is wrapped in transformers' control-token markers before rendering, and
        the processor tokenizes marked text as plain text: only the template's own structure gives EOS and
        placeholder ids, whether the prompt is tokenized here (`tokenize=True`) or the returned string is passed to
        the processor. (A string returned with `tokenize=False` holds the markers only around such strings, where
        it matters; `sanitize_control_tokens=False` renders without them.)
        """
        _check_conversation(conversation)
        if kwargs.get("load_audio_from_video"):
            # transformers would load the audio before this processor could refuse it.
            raise InvalidInputError("Video-LaVIT takes no audio; leave out load_audio_from_video.")
        if kwargs.pop("sanitize_control_tokens", None) is not False:
            conversation = self._mark_user_control_strings(conversation)
        try:
            return super().apply_chat_template(conversation, chat_template, **kwargs)
        except jinja2.TemplateError as error:
            raise InvalidInputError(f"the chat template cannot render this conversation: {error}") from error

    def _mark_user_control_strings(self, conversation):
        """A copy of `conversation` (one or a batch) with the control strings of message texts marked."""
        tokenizer = self.tokenizer
        specials = [token for token in (tokenizer.eos_token, tokenizer.bos_token) if token]
        specials_only = re.compile("|".join(re.escape(token) for token in specials) or "(?!)")
        with_placeholders = re.compile(
            "|".join(re.escape(token) for token in [*specials, IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER])
        )

        def mark(message):
            if not isinstance(message, dict):
                return message
            content = message.get("content")
            if isinstance(content, str):
                return {**message, "content": mark_control_tokens(content, specials_only)}
            if isinstance(content, list):
                parts = [
                    {**part, "text": mark_control_tokens(part["text"], with_placeholders)}
                    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                    else part
                    for part in content
                ]
                return {**message, "content": parts}
            return message

        if isinstance(conversation, (list, tuple)) and conversation and isinstance(conversation[0], (list, tuple)):
            return [[mark(message) for message in messages] for messages in conversation]
        if isinstance(conversation, (list, tuple)):
            return [mark(message) for message in conversation]
        return conversation

    def batch_decode(self, *args, **kwargs) -> list[str]:
        """Forwarded to the tokenizer's `batch_decode`."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs) -> str:
        """Forwarded to the tokenizer's `decode`."""
        return self.tokenizer.decode(*args, **kwargs)

    def post_process_answer(self, text: str | list[str]) -> str | list[str]:
        """The reference's answer clean-up: keep what comes before the literal two characters `\\n`, stripped."""
        if isinstance(text, str):
            return text.split(ANSWER_STOP_STRING)[0].strip()
        return [answer.split(ANSWER_STOP_STRING)[0].strip() for answer in text]

    def post_process_generation(
        self, sequences: torch.Tensor | Sequence[int] | Sequence[Sequence[int]] | Sequence[torch.Tensor]
    ) -> list[VideoLaVITGeneratedSequence]:
        """Split generated sequences into text, keyframe codes and motion codes.

        Args:
            sequences: a `[batch, seq_len]` LongTensor, one 1-D sequence, or a list of 1-D sequences (tensors or
                lists of ids). Padding ids are ignored. A span left open at the end (generation stopped early)
                keeps the codes it has.

        Returns:
            `list[VideoLaVITGeneratedSequence]`, one per sequence.

        Raises:
            `InvalidInputError`: a code or text id inside the wrong span, a code outside any span, or unbalanced
                span markers.
        """
        if isinstance(sequences, torch.Tensor):
            if sequences.dim() not in (1, 2):
                raise InvalidInputError(f"sequences must be 1-D or 2-D, got shape {tuple(sequences.shape)}.")
            batch = [sequences] if sequences.dim() == 1 else list(sequences)
        elif len(sequences) > 0 and isinstance(sequences[0], (int, np.integer)):
            batch = [sequences]
        else:
            batch = list(sequences)
        return [self._split_sequence(torch.as_tensor(ids, dtype=torch.long).flatten().tolist()) for ids in batch]

    def _split_sequence(self, ids: list[int]) -> VideoLaVITGeneratedSequence:
        layout = self.layout
        pad_token_id = self.tokenizer.pad_token_id
        placeholder_ids = (layout.image_token_id, layout.video_token_id)
        text_ids, keyframe_codes, motion_codes, clips = [], [], [], []
        open_span, span_codes = None, []  # open_span: "keyframe", "motion" or None
        for position, token_id in enumerate(ids):
            if token_id == pad_token_id or token_id in placeholder_ids:
                continue
            if token_id in (layout.image_start_id, layout.motion_start_id):
                if open_span is not None:
                    raise InvalidInputError(f"position {position}: a span starts inside an open {open_span} span.")
                open_span, span_codes = ("keyframe" if token_id == layout.image_start_id else "motion"), []
            elif token_id in (layout.image_end_id, layout.motion_end_id):
                expected = "keyframe" if token_id == layout.image_end_id else "motion"
                if open_span != expected:
                    raise InvalidInputError(f"position {position}: a {expected} span ends but none is open.")
                self._close_span(open_span, span_codes, keyframe_codes, motion_codes, clips)
                open_span = None
            elif layout.visual_code_offset <= token_id < layout.motion_start_id:
                if open_span != "keyframe":
                    raise InvalidInputError(
                        f"position {position}: keyframe code id {token_id} outside [IMG] ... [/IMG]."
                    )
                span_codes.append(token_id - layout.visual_code_offset)
            elif layout.motion_code_offset <= token_id < layout.vocab_size:
                if open_span != "motion":
                    raise InvalidInputError(
                        f"position {position}: motion code id {token_id} outside [MOV] ... [/MOV]."
                    )
                span_codes.append(token_id - layout.motion_code_offset)
            elif 0 <= token_id < layout.text_vocab_size:
                if open_span is not None:
                    raise InvalidInputError(f"position {position}: text id {token_id} inside a {open_span} span.")
                text_ids.append(token_id)
            else:
                raise InvalidInputError(f"position {position}: id {token_id} is outside the vocabulary.")
        if open_span is not None:
            self._close_span(open_span, span_codes, keyframe_codes, motion_codes, clips)
        text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        return VideoLaVITGeneratedSequence(
            text=text, keyframe_codes=keyframe_codes, motion_codes=motion_codes, clips=clips
        )

    @staticmethod
    def _close_span(kind, span_codes, keyframe_codes, motion_codes, clips):
        codes = torch.tensor(span_codes, dtype=torch.long)
        if kind == "keyframe":
            keyframe_codes.append(codes)
            clips.append((codes, None))
        elif clips and clips[-1][1] is None and clips[-1][0] is not None:
            motion_codes.append(codes)
            clips[-1] = (clips[-1][0], codes)
        else:
            motion_codes.append(codes)
            clips.append((None, codes))

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "motion_vectors", "keyframe_features"]


_MESSAGE_ROLES = ("system", "user", "assistant")
_PART_TYPES = ("text", "image", "video")


def _check_conversation(conversation) -> None:
    """Raise `InvalidInputError` unless `conversation` is one conversation or a batch of them, each a non-empty list of
    `{"role", "content"}` messages whose content is a string or a list of text / image / video parts."""
    if not isinstance(conversation, (list, tuple)) or not conversation:
        raise InvalidInputError("a conversation must be a non-empty list of {'role': ..., 'content': ...} messages.")
    batch = conversation if isinstance(conversation[0], (list, tuple)) else [conversation]
    for chat in batch:
        if not isinstance(chat, (list, tuple)) or not chat:
            raise InvalidInputError("every conversation of a batch must be a non-empty list of messages.")
        for index, message in enumerate(chat):
            if not isinstance(message, dict) or message.get("role") not in _MESSAGE_ROLES:
                role = message.get("role") if isinstance(message, dict) else type(message).__name__
                raise InvalidInputError(
                    f"message {index}: must be a dict with a 'role' of {', '.join(_MESSAGE_ROLES)}, got {role!r}."
                )
            content = message.get("content")
            if isinstance(content, str):
                continue
            if not isinstance(content, (list, tuple)):
                raise InvalidInputError(
                    f"message {index}: 'content' must be a string or a list of parts, got {type(content).__name__}."
                )
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in _PART_TYPES:
                    raise InvalidInputError(
                        f"message {index}: every part must be a dict with a 'type' of {', '.join(_PART_TYPES)} "
                        f"(Video-LaVIT takes no audio), got {part!r:.80}."
                    )
                if kind == "text" and not isinstance(part.get("text"), str):
                    text_type = type(part.get("text")).__name__
                    raise InvalidInputError(
                        f"message {index}: a text part's 'text' must be a string, got {text_type}."
                    )


def _checked_clips(clips: Mapping) -> dict:
    """The video processor's output given back to the processor, checked."""
    missing = [name for name in ("keyframe_pixel_values", "motion_vectors", "num_clips") if name not in clips]
    if missing:
        raise InvalidInputError(f"decoded videos must be the video processor's output; missing {', '.join(missing)}.")
    values = {name: torch.as_tensor(clips[name]) for name in ("keyframe_pixel_values", "motion_vectors", "num_clips")}
    total = int(values["num_clips"].sum())
    if len(values["keyframe_pixel_values"]) != total or len(values["motion_vectors"]) != total:
        raise InvalidInputError(
            f"decoded videos: num_clips adds up to {total}, but there are {len(values['keyframe_pixel_values'])} "
            f"keyframes and {len(values['motion_vectors'])} motion grids."
        )
    return values


def _as_list(inputs, name: str) -> list:
    """One input or a list of inputs (a list of per-prompt lists is flattened) -> a list."""
    if inputs is None:
        return []
    if isinstance(inputs, (list, tuple)):
        flat = []
        for item in inputs:
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        if not flat:
            raise InvalidInputError(f"`{name}` is an empty list; pass None when there are no {name}.")
        return flat
    return [inputs]


def load_image_file(path: str | os.PathLike) -> Image.Image:
    """Read a local image file as RGB (EXIF orientation applied), with the package's errors.

    Only the formats of `IMAGE_FORMATS` are decoded (none of them runs an external program, as PIL's EPS reader
    runs Ghostscript); URLs, `data:` URIs and base64 strings are refused (nothing is downloaded), and so are images
    PIL considers decompression bombs.
    """
    name = os.fsdecode(os.fspath(path))
    if not os.path.lexists(name) and (_URL_PATTERN.match(name) or len(name) > 4096):
        raise InvalidInputError(
            f"{name[:80]}: is a URL or encoded data, and images are read from local files only (nothing is "
            "downloaded or decoded from text); save the image to a file and pass its path, or pass a PIL image."
        )
    Image.init()  # registers every format PIL has, so that the available ones can be named
    formats = [format_name for format_name in IMAGE_FORMATS if format_name in Image.OPEN]
    with open_regular_file(name, InvalidInputError, "image") as file:
        try:
            image = Image.open(file, formats=formats)
            image.load()
        except Image.DecompressionBombError as error:
            raise InvalidInputError(
                f"{name}: the image is too large to decode safely ({error}); downscale it."
            ) from error
        except UnidentifiedImageError as error:
            raise InvalidInputError(
                f"{name}: not a readable image (not one of the formats {', '.join(formats)}); pass a PNG, JPEG, "
                "WebP, GIF, BMP, TIFF or AVIF file."
            ) from error
        except (OSError, SyntaxError, ValueError) as error:
            raise InvalidInputError(
                f"{name}: not a readable image ({error}); the file is damaged, or pass a PNG, JPEG, WebP, GIF, BMP, "
                "TIFF or AVIF file."
            ) from error
    _check_image_mode(image, name)
    return ImageOps.exif_transpose(image).convert("RGB")


# PIL modes whose conversion to RGB keeps the picture; 16-bit and floating-point ones would be clipped to white.
_IMAGE_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
)


def _check_image_mode(image: Image.Image, name: str) -> None:
    if image.mode not in _IMAGE_MODES:
        raise InvalidInputError(
            f"{name}: a {image.mode} image (16-bit or floating point) would lose its values when made 8-bit RGB; "
            "convert it to 8-bit RGB first, with the scaling you intend."
        )


def _as_images(images) -> list:
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    image_list = [
        load_image_file(image) if isinstance(image, (str, os.PathLike)) else image
        for image in _as_list(images, "images")
    ]
    for image in image_list:
        if isinstance(image, np.ndarray):
            if (
                image.ndim not in (2, 3)
                or image.dtype != np.uint8
                or (image.ndim == 3 and image.shape[-1] not in (3, 4))
            ):
                raise InvalidInputError(
                    f"image arrays must be uint8 [H, W, 3] RGB, [H, W, 4] RGBA or [H, W] grey, got {image.dtype} of "
                    f"shape {tuple(image.shape)}; convert with (array * 255).round().clip(0, 255).astype(np.uint8)."
                )
            if 0 in image.shape:
                raise InvalidInputError(f"an image array of shape {tuple(image.shape)} has no pixels.")
        elif not isinstance(image, Image.Image):
            raise InvalidInputError(
                f"images must be PIL images, uint8 [H, W, 3] arrays or paths, got {type(image).__name__}"
                + (f" of shape {tuple(image.shape)}" if hasattr(image, "shape") else "")
                + "."
            )
        elif 0 in image.size:
            raise InvalidInputError(f"an image of size {image.size} has no pixels.")
        else:
            _check_image_mode(image, "an image")
    return image_list


__all__ = ["IMAGE_FORMATS", "VideoLaVITGeneratedSequence", "VideoLaVITProcessor", "load_image_file"]
