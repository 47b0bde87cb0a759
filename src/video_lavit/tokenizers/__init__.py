"""Tokenizers of Video-LaVIT: the motion tokenizer and the VQ codebook it shares with the keyframe tokenizer."""

from .configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from .modeling_motion_tokenizer import (
    MotionTokenizerEncoderOutput,
    MotionTokenizerOutput,
    VideoLaVITMotionTokenizer,
)
from .vector_quantizer import QuantizerOutput, VectorQuantizer

__all__ = [
    "MotionTokenizerEncoderOutput",
    "MotionTokenizerOutput",
    "QuantizerOutput",
    "VectorQuantizer",
    "VideoLaVITMotionTokenizer",
    "VideoLaVITMotionTokenizerConfig",
]
