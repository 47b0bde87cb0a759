"""Collators for the language-model stages: pre-training on interleaved media and text, and instruction tuning.

Both read the prepared rows of `training.prepare` (so `TrainingArguments(remove_unused_columns=False)`: the raw
columns reach the collator) and build what `VideoLaVITForConditionalGeneration.forward` takes: `input_ids`,
`attention_mask`, `labels` and, for an understanding checkpoint, `keyframe_features`. Keyframe codes and motion codes
are written as ids, so a step runs no tokenizer and decodes no video. A clip is laid out as the processor lays it out
at inference, `[IMG] keyframe [/IMG] [MOV] 135 motion codes [/MOV]`.

- `VideoLaVITPretrainingCollator` (stage 2, the generation checkpoint): `[media, text]` or `[text, media]`, the order
  drawn per sample from a seeded hash of its id (the same on every run, rank and resumed run), so that the model
  learns both to describe and to generate; plain-text samples pass as they are. The loss covers every position:
  text, markers, keyframe codes and motion codes (the generation objective).
- `VideoLaVITInstructionCollator` (stage 3): conversations rendered with the processor's chat template, as at
  inference; the loss covers only the assistant replies (their text and the `</s>` that ends each), -100 on the
  system prompt, the user turns and every media position.

A sample longer than `max_length` loses clips from the end of its video (a clip boundary, never inside a span) until
it fits; one that does not fit with a single clip is dropped and counted in `collator.dropped` (a warning says so).
A plain-text sample of pre-training is cut at `max_length`. `collator.fits` filters a dataset beforehand, so that no
batch is left empty (`video-lavit train` does).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..errors import InvalidInputError
from ..media_tokenizers.token_layout import VideoLaVITTokenLayout
from ..processing.processing_video_lavit import VideoLaVITProcessor

logger = logging.getLogger(__name__)
IGNORE_INDEX = -100


def _draw(seed: int, sample_id: str) -> float:
    """A number in [0, 1) fixed by the seed and the sample's id."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _keyframe_span(layout: VideoLaVITTokenLayout, feature: dict, index: int) -> tuple[list[int], torch.Tensor | None]:
    """The ids between `[IMG]` and `[/IMG]` of keyframe `index` of a prepared row, and its features (or None)."""
    if feature["keyframe_input"] == "codes":
        codes = torch.as_tensor(feature["keyframe_codes"][index], dtype=torch.long)
        return layout.visual_codes_to_ids(codes).tolist(), None
    if feature["keyframe_input"] == "features":
        values = torch.as_tensor(feature["keyframe_features"][index], dtype=torch.float32)
        return [layout.image_token_id] * len(values), values
    raise InvalidInputError(
        f"sample {feature.get('id')}: was prepared without tokenizers (keyframe_input='none'); prepare the corpus "
        "with --tokenizers MODEL_FOLDER to train the language model on it."
    )


def _num_keyframes(feature: dict) -> int:
    return len(feature["keyframe_codes"] if feature["keyframe_input"] == "codes" else feature["keyframe_features"])


def _pad(
    rows: list[list[int]], labels: list[list[int]], pad_token_id: int, padding_side: str, multiple: int | None
) -> dict[str, torch.Tensor]:
    length = max(len(row) for row in rows)
    if multiple:
        length = -(-length // multiple) * multiple
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    label_ids = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for index, (row, label) in enumerate(zip(rows, labels)):
        span = slice(length - len(row), length) if padding_side == "left" else slice(0, len(row))
        input_ids[index, span] = torch.tensor(row, dtype=torch.long)
        label_ids[index, span] = torch.tensor(label, dtype=torch.long)
        attention_mask[index, span] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": label_ids}


@dataclass
class _CollatorBase:
    processor: VideoLaVITProcessor
    max_length: int | None = None
    padding_side: str = "right"
    pad_to_multiple_of: int | None = None
    dropped: int = field(default=0, init=False)

    def __post_init__(self):
        if not isinstance(self.processor, VideoLaVITProcessor):
            raise InvalidInputError(
                f"the collator needs the model's VideoLaVITProcessor, got {type(self.processor).__name__}."
            )
        if self.padding_side not in ("left", "right"):
            raise InvalidInputError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}.")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 8):
            raise InvalidInputError(f"max_length must be an integer of at least 8, got {self.max_length!r}.")

    @property
    def layout(self) -> VideoLaVITTokenLayout:
        return self.processor.layout

    def _finish(self, built: list, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        kept = [item for item in built if item is not None]
        if not kept:
            ids = ", ".join(str(feature.get("id")) for feature in features)
            raise InvalidInputError(
                f"every sample of the batch ({ids}) is longer than max_length={self.max_length} even with one clip; "
                "raise max_length or prepare the corpus with fewer tokens per keyframe."
            )
        pad_token_id = self.processor.tokenizer.pad_token_id
        pad_token_id = 0 if pad_token_id is None else pad_token_id
        batch = _pad(
            [ids for ids, _, _ in kept],
            [labels for _, labels, _ in kept],
            pad_token_id,
            self.padding_side,
            self.pad_to_multiple_of,
        )
        keyframe_features = [values for _, _, feature_list in kept for values in feature_list]
        if keyframe_features:
            batch["keyframe_features"] = torch.cat(keyframe_features)
        return batch

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        built = [self._build(feature) for feature in features]
        for feature, item in zip(features, built):
            if item is None:
                self.dropped += 1
                logger.warning(
                    "sample %s is longer than max_length=%d even with a single clip: dropped (%d so far)",
                    feature.get("id"),
                    self.max_length,
                    self.dropped,
                )
        return self._finish(built, features)

    def fits(self, feature: dict) -> bool:
        """Whether the sample fits in `max_length` (with at least one clip of its video), for filtering a dataset
        before training (`dataset.filter(collator.fits)`), so that no batch is left empty."""
        return self._build(feature) is not None

    def _media(self, feature: dict, num_clips: int) -> tuple[list[int], list[torch.Tensor]]:
        """The ids of a prepared row's media (its first `num_clips` clips, or its image), and their features."""
        layout = self.layout
        ids, values = [], []
        if feature["media"] == "image":
            span, value = _keyframe_span(layout, feature, 0)
            ids = [layout.image_start_id, *span, layout.image_end_id]
            values = [value] if value is not None else []
            return ids, values
        motion = layout.motion_codes_to_ids(torch.as_tensor(feature["motion_codes"][:num_clips], dtype=torch.long))
        for clip in range(num_clips):
            span, value = _keyframe_span(layout, feature, clip)
            ids += [layout.image_start_id, *span, layout.image_end_id]
            ids += [layout.motion_start_id, *motion[clip].tolist(), layout.motion_end_id]
            if value is not None:
                values.append(value)
        return ids, values


@dataclass
class VideoLaVITPretrainingCollator(_CollatorBase):
    """Stage-2 batches: `[media, text]` or `[text, media]` per sample, loss on every position.

    Args:
        processor ([`VideoLaVITProcessor`]): the generation checkpoint's processor (its tokenizer and layout).
        max_length (`int`, *optional*): longest sequence (the model's positions); see the module docstring.
        padding_side (`str`, *optional*, defaults to `"right"`): where padding goes.
        pad_to_multiple_of (`int`, *optional*): pad the length to a multiple of this.
        media_first_probability (`float`, *optional*, defaults to 0.5): probability of `[media, text]`.
        seed (`int`, *optional*, defaults to 0): seeds the per-sample order.
    """

    media_first_probability: float = 0.5
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.media_first_probability <= 1.0:
            raise InvalidInputError(
                f"media_first_probability must lie in [0, 1], got {self.media_first_probability!r}."
            )

    def media_first(self, feature: dict) -> bool:
        """Whether the sample is laid out `[media, text]` (else `[text, media]`)."""
        return _draw(self.seed, str(feature["id"])) < self.media_first_probability

    def _build(self, feature: dict):
        tokenizer = self.processor.tokenizer
        if feature.get("conversations"):
            raise InvalidInputError(
                f"sample {feature.get('id')} is a conversation; train on it with VideoLaVITInstructionCollator."
            )
        text = tokenizer(feature["text"] or "", add_special_tokens=False, split_special_tokens=True)["input_ids"]
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        if feature["media"] == "text":
            ids = (bos + text + eos)[: self.max_length]
            return ids, list(ids), []
        if feature["keyframe_input"] == "features":
            raise InvalidInputError(
                f"sample {feature.get('id')}: pre-training predicts keyframe codes; prepare the corpus with a "
                "generation checkpoint (keyframe_input='codes')."
            )
        num_clips = _num_keyframes(feature) if feature["media"] == "video" else 1
        while True:
            media, _ = self._media(feature, num_clips)
            parts = media + text if self.media_first(feature) else text + media
            ids = bos + parts + eos
            if self.max_length is None or len(ids) <= self.max_length:
                return ids, list(ids), []
            if feature["media"] != "video" or num_clips == 1:
                return None
            num_clips -= 1


@dataclass
class VideoLaVITInstructionCollator(_CollatorBase):
    """Stage-3 batches: chat-template conversations, loss only on the assistant replies.

    Args:
        processor ([`VideoLaVITProcessor`]): the checkpoint's processor (tokenizer, layout and chat template).
        max_length (`int`, *optional*): longest sequence; see the module docstring.
        padding_side (`str`, *optional*, defaults to `"right"`): where padding goes.
        pad_to_multiple_of (`int`, *optional*): pad the length to a multiple of this.
        system_prompt (`str`, *optional*): a system message put before every conversation (default: the
            template's own).
    """

    system_prompt: str | None = None

    def messages(self, feature: dict) -> list[dict]:
        """The sample's conversation as chat messages (`human` -> `user`, `gpt` -> `assistant`)."""
        turns = feature.get("conversations") or []
        if not turns or not any(turn["from"] == "gpt" for turn in turns):
            raise InvalidInputError(
                f"sample {feature.get('id')}: instruction tuning needs a conversation with at least one gpt reply."
            )
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt is not None else []
        roles = {"human": "user", "gpt": "assistant"}
        messages += [{"role": roles[turn["from"]], "content": turn["value"]} for turn in turns]
        return messages

    def _render(self, messages: list[dict], generation_prompt: bool) -> list[int]:
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        return self.processor._tokenize_prompt(text, add_special_tokens=True)

    def prompt_and_labels(self, feature: dict) -> tuple[list[int], list[int]]:
        """The conversation's ids with `<image>` / `<video>` placeholders, and its labels (-100 outside replies)."""
        messages = self.messages(feature)
        ids = self._render(messages, generation_prompt=False)
        labels = [IGNORE_INDEX] * len(ids)
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(self._render(messages[:index], generation_prompt=True))
            prefix = self._render(messages[: index + 1], generation_prompt=False)
            end = len(prefix)
            if ids[:end] != prefix or start > end:
                raise InvalidInputError(
                    f"sample {feature.get('id')}: the chat template does not render the conversation's turns as "
                    "prefixes of each other, so the replies cannot be located; use a template that does."
                )
            labels[start:end] = ids[start:end]
        return ids, labels

    def _build(self, feature: dict):
        processor = self.processor
        prompt, prompt_labels = self.prompt_and_labels(feature)
        if feature["media"] == "video":
            num_clips = _num_keyframes(feature)
        else:
            num_clips = 1 if feature["media"] == "image" else 0
        while True:
            media, values = self._media(feature, num_clips) if feature["media"] != "text" else ([], [])
            ids, labels = [], []
            for token_id, label in zip(prompt, prompt_labels):
                if token_id in (processor.video_token_id, processor.image_token_id):
                    if (token_id == processor.video_token_id) != (feature["media"] == "video"):
                        raise InvalidInputError(
                            f"sample {feature.get('id')}: its placeholder does not match its media "
                            f"({feature['media']})."
                        )
                    ids += media
                    labels += [IGNORE_INDEX] * len(media)
                else:
                    ids.append(token_id)
                    labels.append(label)
            if self.max_length is None or len(ids) <= self.max_length:
                return ids, labels, values
            if feature["media"] != "video" or num_clips == 1:
                return None
            num_clips -= 1


__all__ = ["IGNORE_INDEX", "VideoLaVITInstructionCollator", "VideoLaVITPretrainingCollator"]
