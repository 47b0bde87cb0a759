"""Converters from the reference release's pickled `.bin` checkpoints to `save_pretrained` safetensors folders."""

from .detokenizer import convert_detokenizer
from .language_model import convert_language_model
from .motion_tokenizer import convert_motion_tokenizer, convert_motion_tokenizer_state_dict
from .visual_tokenizer import convert_visual_tokenizer

__all__ = [
    "convert_detokenizer",
    "convert_language_model",
    "convert_motion_tokenizer",
    "convert_motion_tokenizer_state_dict",
    "convert_visual_tokenizer",
]
