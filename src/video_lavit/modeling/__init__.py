"""The unified Video-LaVIT model: configuration, base model and the model with its language-modelling head."""

from .configuration_video_lavit import VideoLaVITConfig
from .modeling_video_lavit import (
    QUANTIZATION_SKIP_MODULES,
    VideoLaVITForConditionalGeneration,
    VideoLaVITKeyframeTokens,
    VideoLaVITModel,
    VideoLaVITPreTrainedModel,
)

__all__ = [
    "QUANTIZATION_SKIP_MODULES",
    "VideoLaVITConfig",
    "VideoLaVITForConditionalGeneration",
    "VideoLaVITKeyframeTokens",
    "VideoLaVITModel",
    "VideoLaVITPreTrainedModel",
]
