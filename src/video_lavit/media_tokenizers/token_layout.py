"""The language model's token-id layout: where text, keyframe and motion tokens live.

With the released sizes (32000 text ids, 16384 keyframe codes, 1024 motion codes):

| ids | meaning |
|---|---|
| 0 .. 31999 | text (LLaMA vocabulary) |
| 32000 / 32001 | `[IMG]` / `[/IMG]`: keyframe (image) start / end |
| 32002 .. 48385 | keyframe codes (id = code + 32002) |
| 48386 / 48387 | `[MOV]` / `[/MOV]`: motion start / end |
| 48388 .. 49411 | motion codes (id = code + 48388) |
| 49412 / 49413 | `<image>` / `<video>` placeholders (ours; replaced before the embedding, never generated) |

`VideoLaVITTokenLayout` is the only place that does this arithmetic; everything else asks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IMAGE_START_TOKEN = "[IMG]"
IMAGE_END_TOKEN = "[/IMG]"
MOTION_START_TOKEN = "[MOV]"
MOTION_END_TOKEN = "[/MOV]"
IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"


@dataclass(frozen=True)
class VideoLaVITTokenLayout:
    """Token ids of the markers, codes and placeholders, from the sizes of the three vocabularies.

    Args:
        text_vocab_size (`int`): ids below this are text.
        num_visual_codes (`int`): keyframe codebook size.
        num_motion_codes (`int`): motion codebook size.
        motion_tokens_per_clip (`int`): motion codes of one clip (135).
    """

    text_vocab_size: int = 32000
    num_visual_codes: int = 16384
    num_motion_codes: int = 1024
    motion_tokens_per_clip: int = 135

    @property
    def image_start_id(self) -> int:
        return self.text_vocab_size

    @property
    def image_end_id(self) -> int:
        return self.text_vocab_size + 1

    @property
    def visual_code_offset(self) -> int:
        return self.text_vocab_size + 2

    @property
    def motion_start_id(self) -> int:
        return self.visual_code_offset + self.num_visual_codes

    @property
    def motion_end_id(self) -> int:
        return self.motion_start_id + 1

    @property
    def motion_code_offset(self) -> int:
        return self.motion_start_id + 2

    @property
    def vocab_size(self) -> int:
        """Size of the language model's embedding and output layers."""
        return self.motion_code_offset + self.num_motion_codes

    @property
    def image_token_id(self) -> int:
        """The `<image>` placeholder (outside the language model's vocabulary)."""
        return self.vocab_size

    @property
    def video_token_id(self) -> int:
        """The `<video>` placeholder (outside the language model's vocabulary)."""
        return self.vocab_size + 1

    @property
    def visual_id_range(self) -> range:
        return range(self.visual_code_offset, self.motion_start_id)

    @property
    def motion_id_range(self) -> range:
        return range(self.motion_code_offset, self.vocab_size)

    @property
    def multimodal_id_range(self) -> range:
        """Every marker and code id: what text answers must never contain."""
        return range(self.image_start_id, self.vocab_size)

    def visual_codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.visual_code_offset

    def ids_to_visual_codes(self, ids: torch.Tensor) -> torch.Tensor:
        return ids - self.visual_code_offset

    def motion_codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.motion_code_offset

    def ids_to_motion_codes(self, ids: torch.Tensor) -> torch.Tensor:
        return ids - self.motion_code_offset

    def is_visual_code(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.visual_code_offset) & (ids < self.motion_start_id)

    def is_motion_code(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= self.motion_code_offset) & (ids < self.vocab_size)

    def is_text(self, ids: torch.Tensor) -> torch.Tensor:
        return (ids >= 0) & (ids < self.text_vocab_size)

    def ids_except(self, *allowed: range | int) -> list[int]:
        """Every id of the vocabulary not in `allowed` (for suppressing all other tokens during generation)."""
        keep = torch.ones(self.vocab_size, dtype=torch.bool)
        for item in allowed:
            if isinstance(item, range):
                keep[item.start : item.stop] = False
            else:
                keep[item] = False
        return keep.nonzero().flatten().tolist()

    def special_tokens(self) -> list[tuple[int, str]]:
        """`(id, string)` of every id from `text_vocab_size` on, in id order, for the tokenizer."""
        tokens = [(self.image_start_id, IMAGE_START_TOKEN), (self.image_end_id, IMAGE_END_TOKEN)]
        width = len(str(self.num_visual_codes - 1))
        tokens += [
            (self.visual_code_offset + code, f"<visual_{code:0{width}d}>") for code in range(self.num_visual_codes)
        ]
        tokens += [(self.motion_start_id, MOTION_START_TOKEN), (self.motion_end_id, MOTION_END_TOKEN)]
        width = len(str(self.num_motion_codes - 1))
        tokens += [
            (self.motion_code_offset + code, f"<motion_{code:0{width}d}>") for code in range(self.num_motion_codes)
        ]
        tokens += [(self.image_token_id, IMAGE_PLACEHOLDER), (self.video_token_id, VIDEO_PLACEHOLDER)]
        return tokens


__all__ = [
    "IMAGE_END_TOKEN",
    "IMAGE_PLACEHOLDER",
    "IMAGE_START_TOKEN",
    "MOTION_END_TOKEN",
    "MOTION_START_TOKEN",
    "VIDEO_PLACEHOLDER",
    "VideoLaVITTokenLayout",
]
