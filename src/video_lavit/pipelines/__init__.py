"""The Video-LaVIT detokenizer: motion condition encoder, motion-conditioned video UNet and the diffusers pipeline."""

from .generation import VideoLaVITGenerator
from .motion_condition_encoder import VideoLaVITMotionConditionEncoder
from .pipeline_video_lavit import VideoLaVITDetokenizerPipeline, VideoLaVITDetokenizerPipelineOutput
from .unet_video_lavit import VideoLaVITVideoUNet

__all__ = [
    "VideoLaVITDetokenizerPipeline",
    "VideoLaVITDetokenizerPipelineOutput",
    "VideoLaVITGenerator",
    "VideoLaVITMotionConditionEncoder",
    "VideoLaVITVideoUNet",
]
