"""The unified Video-LaVIT model: configuration and causal language model."""

from .configuration_video_lavit import VideoLaVITConfig
from .modeling_video_lavit import (
    VideoLaVITForCausalLM,
    VideoLaVITModel,
    VideoLaVITMultimodalInputs,
    VideoLaVITPreTrainedModel,
    VideoTokensOutput,
)

__all__ = [
    "VideoLaVITConfig",
    "VideoLaVITForCausalLM",
    "VideoLaVITModel",
    "VideoLaVITMultimodalInputs",
    "VideoLaVITPreTrainedModel",
    "VideoTokensOutput",
]
