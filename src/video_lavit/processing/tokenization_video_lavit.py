"""The Video-LaVIT tokenizer: a LLaMA text tokenizer plus one string per marker, code and placeholder id.

`add_video_lavit_tokens` appends, as special tokens, every string of `VideoLaVITTokenLayout.special_tokens()` to a
LLaMA tokenizer whose vocabulary is exactly the layout's text vocabulary, so that token ids and the layout agree:
`[IMG]`, `[/IMG]`, `<visual_00000>` ... `<visual_16383>`, `[MOV]`, `[/MOV]`, `<motion_0000>` ... `<motion_1023>`,
then the `<image>` and `<video>` placeholders. `layout_from_tokenizer` reads the layout back from such a tokenizer.

Deliberate differences from the reference:
- The released tokenizer has no string form for ids >= 32000 (the reference builds code ids by arithmetic and
  decodes only text). Giving each id a string lets generated sequences decode and re-encode losslessly, and lets the
  tokenizer's vocabulary size match the language model's.
- The reference marks images and videos in `input_ids` with the negative ids -200 / -201; we use two real ids just
  past the language model's vocabulary (`layout.image_token_id`, `layout.video_token_id`), which the model replaces
  before the embedding.
"""

from __future__ import annotations

from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase

from ..errors import InvalidInputError
from ..media_tokenizers.token_layout import (
    IMAGE_PLACEHOLDER,
    IMAGE_START_TOKEN,
    MOTION_START_TOKEN,
    VIDEO_PLACEHOLDER,
    VideoLaVITTokenLayout,
)


def add_video_lavit_tokens(
    tokenizer: PreTrainedTokenizerBase, layout: VideoLaVITTokenLayout | None = None
) -> PreTrainedTokenizerBase:
    """Add the marker, code and placeholder tokens of `layout` to a LLaMA `tokenizer`, in place, and return it.

    Also sets `padding_side="left"` and the pad token to the unknown token, as the reference does for inference.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): a tokenizer with exactly `layout.text_vocab_size` tokens.
        layout (`VideoLaVITTokenLayout`, *optional*): the token layout (defaults to the released sizes).

    Raises:
        `InvalidInputError`: the tokenizer's size is not the layout's text vocabulary, one of the strings is already
            in its vocabulary, or the new tokens did not receive the layout's ids.
    """
    layout = layout if layout is not None else VideoLaVITTokenLayout()
    if len(tokenizer) != layout.text_vocab_size:
        raise InvalidInputError(
            f"the tokenizer has {len(tokenizer)} tokens but the token layout expects a text vocabulary of exactly "
            f"{layout.text_vocab_size}; pass the plain LLaMA tokenizer (without Video-LaVIT tokens), or a layout with "
            f"text_vocab_size={len(tokenizer)}."
        )
    special_tokens = layout.special_tokens()
    vocab = tokenizer.get_vocab()
    clashes = [content for _, content in special_tokens if content in vocab]
    if clashes:
        raise InvalidInputError(
            f"the tokenizer already has {len(clashes)} of the Video-LaVIT token strings (e.g. {clashes[0]!r}); "
            "pass the plain LLaMA tokenizer."
        )
    # One call to the backend with every token: adding them one by one re-builds the matcher each time.
    tokenizer.add_tokens(
        [AddedToken(content, special=True, normalized=False) for _, content in special_tokens], special_tokens=True
    )
    contents = [content for _, content in special_tokens]
    ids = tokenizer.convert_tokens_to_ids(contents)
    for (expected_id, content), actual_id in zip(special_tokens, ids):
        if actual_id != expected_id:
            raise InvalidInputError(
                f"{content!r} received id {actual_id} instead of {expected_id}: the tokenizer's ids do not line up "
                "with the token layout."
            )
    if len(tokenizer) != layout.vocab_size + 2:
        raise InvalidInputError(
            f"the tokenizer has {len(tokenizer)} tokens after adding the Video-LaVIT tokens, expected "
            f"{layout.vocab_size + 2}."
        )
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def layout_from_tokenizer(
    tokenizer: PreTrainedTokenizerBase, motion_tokens_per_clip: int = 135
) -> VideoLaVITTokenLayout:
    """The `VideoLaVITTokenLayout` of a tokenizer made by `add_video_lavit_tokens`, from the ids of its markers.

    Raises:
        `InvalidInputError`: the tokenizer lacks the Video-LaVIT tokens or its ids are not in the layout's order.
    """
    vocab = tokenizer.get_vocab()
    missing = [token for token in (IMAGE_START_TOKEN, MOTION_START_TOKEN, IMAGE_PLACEHOLDER) if token not in vocab]
    if missing:
        raise InvalidInputError(
            f"the tokenizer has no {', '.join(missing)} token; build it with `add_video_lavit_tokens` first."
        )
    image_start_id, motion_start_id, image_token_id = (
        vocab[IMAGE_START_TOKEN],
        vocab[MOTION_START_TOKEN],
        vocab[IMAGE_PLACEHOLDER],
    )
    layout = VideoLaVITTokenLayout(
        text_vocab_size=image_start_id,
        num_visual_codes=motion_start_id - image_start_id - 2,
        num_motion_codes=image_token_id - motion_start_id - 2,
        motion_tokens_per_clip=motion_tokens_per_clip,
    )
    if min(layout.num_visual_codes, layout.num_motion_codes) <= 0 or vocab.get(VIDEO_PLACEHOLDER) != (
        layout.video_token_id
    ):
        raise InvalidInputError(
            f"the ids of {IMAGE_START_TOKEN} ({image_start_id}), {MOTION_START_TOKEN} ({motion_start_id}) and "
            f"{IMAGE_PLACEHOLDER} ({image_token_id}) are not in the Video-LaVIT layout's order."
        )
    return layout


__all__ = ["add_video_lavit_tokens", "layout_from_tokenizer"]
