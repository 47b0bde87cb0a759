"""Converters from the reference release's pickled `.bin` checkpoints to `save_pretrained` safetensors folders."""

from .language_model import convert_language_model
from .motion_tokenizer import convert_motion_tokenizer, convert_motion_tokenizer_state_dict
from .visual_tokenizer import convert_visual_tokenizer


def __getattr__(name: str):
    # The detokenizer converter imports diffusers; the others do not need it.
    if name == "convert_detokenizer":
        from .detokenizer import convert_detokenizer

        return convert_detokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "convert_detokenizer",
    "convert_language_model",
    "convert_motion_tokenizer",
    "convert_motion_tokenizer_state_dict",
    "convert_visual_tokenizer",
]
