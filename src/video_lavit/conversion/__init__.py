"""Converters from the reference release's pickled `.bin` checkpoints to `save_pretrained` safetensors folders."""

from .motion_tokenizer import convert_motion_tokenizer, convert_motion_tokenizer_state_dict

__all__ = ["convert_motion_tokenizer", "convert_motion_tokenizer_state_dict"]
