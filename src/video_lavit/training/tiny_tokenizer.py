"""Small LLaMA-style text tokenizers trained offline on a given corpus, for tests and toy worlds (no download).

`train_bpe` learns byte-pair merges in plain Python, so that the tokens and ids are the same on every run and
machine (the `tokenizers` library's trainer breaks ties between equally frequent characters and pairs in hash order).
`build_llama_style_tokenizer` turns them into a byte-fallback BPE tokenizer through transformers' `LlamaTokenizer`,
with LLaMA's conventions: `<unk>` = 0, `<s>` = 1, `</s>` = 2, the 256 byte tokens `<0x00>` ... `<0xFF>` = 3 ... 258,
then the learned tokens, the `▁` (Metaspace) word prefix, BOS added and no EOS. The vocabulary is padded with
unreachable `<unused_N>` tokens to exactly `text_vocab_size` ids, so that `add_video_lavit_tokens` can put the
Video-LaVIT tokens right after it.

This is not LLaMA's SentencePiece training: merges are learned on whole space-separated words with their counts,
ties go to the smallest string, and at most half of the learned budget goes to single characters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from transformers import LlamaTokenizer

from ..errors import InvalidInputError

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
BYTE_TOKENS = tuple(f"<0x{value:02X}>" for value in range(256))
# The fewest learned tokens (characters + merges) a tokenizer is built with.
MIN_LEARNED_TOKENS = 16


def train_bpe(corpus: Sequence[str], budget: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Byte-pair merges learned on `corpus`: `(tokens, merges)` with at most `budget` tokens (characters + merges).

    Words are split on single spaces and prefixed with `▁` (LLaMA's Metaspace convention). The most frequent
    characters (at most `budget // 2`) come first, then one token per merge, the most frequent pair of known tokens
    first, ties to the smallest pair; training stops early when no pair occurs twice.

    Args:
        corpus (`Sequence[str]`): the training sentences.
        budget (`int`): most learned tokens.

    Returns:
        `tuple[list[str], list[tuple[str, str]]]`: the learned tokens in id order, and the merges in rank order.
    """
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


def build_llama_style_tokenizer(corpus: Sequence[str], text_vocab_size: int) -> LlamaTokenizer:
    """A LLaMA-style byte-fallback BPE tokenizer with exactly `text_vocab_size` ids, trained on `corpus`.

    Args:
        corpus (`Sequence[str]`): the training sentences (see `train_bpe`).
        text_vocab_size (`int`): the number of ids, at least 275 (3 special + 256 byte + 16 learned tokens).

    Raises:
        `InvalidInputError`: `text_vocab_size` is too small, or a learned token repeats a special or byte token.
    """
    budget = text_vocab_size - len(SPECIAL_TOKENS) - len(BYTE_TOKENS)
    if budget < MIN_LEARNED_TOKENS:
        raise InvalidInputError(
            f"text_vocab_size must be at least {len(SPECIAL_TOKENS) + len(BYTE_TOKENS) + MIN_LEARNED_TOKENS} "
            f"(special, byte and {MIN_LEARNED_TOKENS} learned tokens), got {text_vocab_size}."
        )
    learned, merges = train_bpe(corpus, budget)
    tokens = list(SPECIAL_TOKENS) + list(BYTE_TOKENS) + learned
    tokens += [f"<unused_{index}>" for index in range(text_vocab_size - len(tokens))]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise InvalidInputError(
            "a token learned from the corpus repeats a special or byte token (a word containing '<s>', '<0x41>', "
            "...); remove such words from the corpus."
        )
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False)
    if len(tokenizer) != text_vocab_size:
        raise InvalidInputError(
            f"the tokenizer built from the corpus has {len(tokenizer)} ids instead of {text_vocab_size}; a learned "
            "token clashes with one of LlamaTokenizer's own tokens."
        )
    return tokenizer


__all__ = ["BYTE_TOKENS", "SPECIAL_TOKENS", "build_llama_style_tokenizer", "train_bpe"]
