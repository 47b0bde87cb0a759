"""Tiny LLaMA-style tokenizers built locally, for tests (nothing is downloaded).

`build_tiny_llama_tokenizer` trains `video_lavit.training.tiny_tokenizer.build_llama_style_tokenizer` on a small
built-in English corpus (in plain Python, so the ids are the same on every run): LLaMA's conventions (`<unk>` = 0,
`<s>` = 1, `</s>` = 2, the byte tokens = 3 ... 258, the `▁` word prefix, BOS added and no EOS), padded with unreachable
`<unused_N>` tokens to exactly `text_vocab_size` ids. `build_tiny_video_lavit_tokenizer` adds the Video-LaVIT tokens
of a tiny layout on top. Stored test fixtures depend on these ids: change neither `CORPUS` nor the trainer.

Import from any test folder as `from tiny_tokenizer import ...` (`tests/` is on `sys.path` through `conftest.py`).
"""

from __future__ import annotations

from transformers import LlamaTokenizer

from video_lavit.media_tokenizers.token_layout import VideoLaVITTokenLayout
from video_lavit.processing.tokenization_video_lavit import add_video_lavit_tokens
from video_lavit.training.tiny_tokenizer import build_llama_style_tokenizer

TINY_TEXT_VOCAB_SIZE = 320
TINY_LAYOUT = VideoLaVITTokenLayout(text_vocab_size=TINY_TEXT_VOCAB_SIZE, num_visual_codes=16, num_motion_codes=16)

CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
    "Describe the video in detail. What is happening in the scene?",
    "A man is riding a bicycle down a quiet street in the morning.",
    "The woman opens the door and walks into the kitchen.",
    "Two dogs are playing with a red ball on the green grass.",
    "The camera moves slowly to the left while the sun sets over the sea.",
    "What color is the car? The car is blue.",
    "How many people are in the picture? There are three people.",
    "A boat sails across the lake under a clear sky.",
    "The girl is dancing and the boy is singing a song.",
    "Is there a cat on the table? Yes, there is a cat sleeping on the table.",
    "The video shows a person cooking pasta in a small kitchen.",
    "Clouds drift above the mountains and the trees move in the wind.",
    "Please answer the question with a single word or phrase.",
    "The children are running in the park and laughing.",
    "He picks up the cup, drinks the coffee, and puts it back.",
    "A bright yellow disc moves across a textured background.",
]


def build_tiny_llama_tokenizer(text_vocab_size: int = TINY_TEXT_VOCAB_SIZE) -> LlamaTokenizer:
    """A LLaMA-style byte-fallback BPE tokenizer with exactly `text_vocab_size` ids, trained on `CORPUS`."""
    return build_llama_style_tokenizer(CORPUS, text_vocab_size)


def build_tiny_video_lavit_tokenizer() -> LlamaTokenizer:
    """The tiny LLaMA tokenizer with the Video-LaVIT tokens of `TINY_LAYOUT` (16 keyframe and 16 motion codes)."""
    return add_video_lavit_tokens(build_tiny_llama_tokenizer(TINY_TEXT_VOCAB_SIZE), TINY_LAYOUT)


__all__ = [
    "CORPUS",
    "TINY_LAYOUT",
    "TINY_TEXT_VOCAB_SIZE",
    "build_tiny_llama_tokenizer",
    "build_tiny_video_lavit_tokenizer",
]
