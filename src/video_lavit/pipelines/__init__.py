"""The Video-LaVIT detokenizer (motion condition encoder, video UNet, the video and keyframe pipelines) and the
generator that runs the language model and the detokenizer together."""

from .generation import VideoLaVITGenerator, VideoTokensOutput, generate_video_tokens, pad_left
from .motion_condition_encoder import VideoLaVITMotionConditionEncoder, VideoLaVITMotionConditionOutput
from .pipeline_keyframe import VideoLaVITKeyframePipeline
from .pipeline_video_lavit import VideoLaVITDetokenizerPipeline, VideoLaVITDetokenizerPipelineOutput
from .unet_video_lavit import VideoLaVITVideoUNet

__all__ = [
    "VideoLaVITDetokenizerPipeline",
    "VideoLaVITDetokenizerPipelineOutput",
    "VideoLaVITGenerator",
    "VideoLaVITKeyframePipeline",
    "VideoLaVITMotionConditionEncoder",
    "VideoLaVITMotionConditionOutput",
    "VideoLaVITVideoUNet",
    "VideoTokensOutput",
    "generate_video_tokens",
    "pad_left",
]
