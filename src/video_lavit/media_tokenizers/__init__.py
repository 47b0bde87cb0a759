"""Tokenizers of Video-LaVIT: the motion tokenizer, the keyframe tokenizer and its token decoder, and the VQ codebook
they share."""

from .configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from .configuration_visual_tokenizer import VideoLaVITVisualTokenDecoderConfig, VideoLaVITVisualTokenizerConfig
from .modeling_motion_tokenizer import (
    MotionTokenizerEncoderOutput,
    MotionTokenizerOutput,
    VideoLaVITMotionTokenizer,
)
from .modeling_visual_token_decoder import VideoLaVITVisualTokenDecoder, VisualTokenDecoderOutput
from .modeling_visual_tokenizer import VideoLaVITVisualTokenizer, VisualTokenizerOutput
from .vector_quantizer import QuantizerOutput, VectorQuantizer

__all__ = [
    "MotionTokenizerEncoderOutput",
    "MotionTokenizerOutput",
    "QuantizerOutput",
    "VectorQuantizer",
    "VideoLaVITMotionTokenizer",
    "VideoLaVITMotionTokenizerConfig",
    "VideoLaVITVisualTokenDecoder",
    "VideoLaVITVisualTokenDecoderConfig",
    "VideoLaVITVisualTokenizer",
    "VideoLaVITVisualTokenizerConfig",
    "VisualTokenDecoderOutput",
    "VisualTokenizerOutput",
]
