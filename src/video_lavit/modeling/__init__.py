"""The unified Video-LaVIT model: configuration, base model and the model with its language-modelling head."""

from .configuration_video_lavit import VideoLaVITConfig
from .modeling_video_lavit import (
    VideoLaVITForConditionalGeneration,
    VideoLaVITKeyframeTokens,
    VideoLaVITModel,
    VideoLaVITPreTrainedModel,
)

__all__ = [
    "VideoLaVITConfig",
    "VideoLaVITForConditionalGeneration",
    "VideoLaVITKeyframeTokens",
    "VideoLaVITModel",
    "VideoLaVITPreTrainedModel",
]
