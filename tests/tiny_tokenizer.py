"""Tiny LLaMA-style tokenizers built locally, for tests (nothing is downloaded).

`build_tiny_llama_tokenizer` learns byte-pair merges on a small built-in English corpus (in plain Python, so the ids
are the same on every run) and builds a byte-fallback BPE tokenizer of the `tokenizers` library from them through
transformers' `LlamaTokenizer`, with LLaMA's conventions: `<unk>` = 0, `<s>` = 1, `</s>` = 2,
the 256 byte tokens `<0x00>` ... `<0xFF>` = 3 ... 258, the `▁` (Metaspace) word prefix, BOS added and no EOS. The
vocabulary is padded with unreachable `<unused_N>` tokens to exactly `text_vocab_size` ids.
`build_tiny_video_lavit_tokenizer` adds the Video-LaVIT tokens of a tiny layout on top.

Import from any test folder as `from tiny_tokenizer import ...` (`tests/` is on `sys.path` through `conftest.py`).
"""

from __future__ import annotations

from collections import Counter

from transformers import LlamaTokenizer

from video_lavit.media_tokenizers.token_layout import VideoLaVITTokenLayout
from video_lavit.processing.tokenization_video_lavit import add_video_lavit_tokens

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

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]
BYTE_TOKENS = [f"<0x{value:02X}>" for value in range(256)]


def _train_bpe(corpus: list[str], budget: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Byte-pair merges learned on `corpus`: `(tokens, merges)` with at most `budget` tokens (characters + merges).

    Plain Python, so that the result is the same on every run and machine (`tokenizers`' trainer breaks ties
    between equally frequent characters and pairs in hash order). Ties go to the smallest string.
    """
    # LLaMA's Metaspace convention: spaces become "▁" and every word starts with one.
    word_counts = Counter(f"▁{word}" for sentence in corpus for word in sentence.split(" ") if word)
    char_counts = Counter()
    for word, count in word_counts.items():
        for char in word:
            char_counts[char] += count
    alphabet = [char for char, _ in sorted(char_counts.items(), key=lambda item: (-item[1], item[0]))]
    tokens = alphabet[: budget // 2]
    known = set(tokens)
    words = {tuple(word): count for word, count in word_counts.items()}
    merges = []
    while len(tokens) < budget:
        pair_counts = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                if pair[0] in known and pair[1] in known:
                    pair_counts[pair] += count
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        if pair_counts[best] < 2:
            break
        merged = best[0] + best[1]
        merges.append(best)
        if merged not in known:
            tokens.append(merged)
            known.add(merged)
        new_words = {}
        for symbols, count in words.items():
            output, index = [], 0
            while index < len(symbols):
                if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == best:
                    output.append(merged)
                    index += 2
                else:
                    output.append(symbols[index])
                    index += 1
            new_words[tuple(output)] = new_words.get(tuple(output), 0) + count
        words = new_words
    return tokens, merges


def build_tiny_llama_tokenizer(text_vocab_size: int = TINY_TEXT_VOCAB_SIZE) -> LlamaTokenizer:
    """A LLaMA-style byte-fallback BPE tokenizer with exactly `text_vocab_size` ids, trained on `CORPUS`."""
    budget = text_vocab_size - len(SPECIAL_TOKENS) - len(BYTE_TOKENS)
    if budget < 16:
        raise ValueError(f"text_vocab_size must be at least {len(SPECIAL_TOKENS) + len(BYTE_TOKENS) + 16}")
    learned, merges = _train_bpe(CORPUS, budget)
    tokens = SPECIAL_TOKENS + BYTE_TOKENS + learned
    tokens += [f"<unused_{index}>" for index in range(text_vocab_size - len(tokens))]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False)
    if len(tokenizer) != text_vocab_size:
        raise RuntimeError(f"tiny tokenizer has {len(tokenizer)} ids instead of {text_vocab_size}")
    return tokenizer


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
