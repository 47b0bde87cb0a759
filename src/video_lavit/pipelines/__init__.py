"""The Video-LaVIT detokenizer: motion condition encoder, motion-conditioned video UNet and the diffusers pipeline."""

from .generation import VideoLaVITGenerator, VideoTokensOutput, generate_video_tokens, pad_left
from .motion_condition_encoder import VideoLaVITMotionConditionEncoder
from .pipeline_video_lavit import VideoLaVITDetokenizerPipeline, VideoLaVITDetokenizerPipelineOutput
from .unet_video_lavit import VideoLaVITVideoUNet

__all__ = [
    "VideoLaVITDetokenizerPipeline",
    "VideoLaVITDetokenizerPipelineOutput",
    "VideoLaVITGenerator",
    "VideoLaVITMotionConditionEncoder",
    "VideoLaVITVideoUNet",
    "VideoTokensOutput",
    "generate_video_tokens",
    "pad_left",
]
