"""Video I/O and processors: videos -> keyframes and motion-vector grids, prompts -> token ids."""

from .clip_sampling import select_clip_starts
from .motion_vectors import clip_motion_grid, pool_frame_motion_vectors
from .processing_video_lavit import VideoLaVITGeneratedSequence, VideoLaVITProcessor
from .sample_video import make_sample_video, sample_video_frames
from .tokenization_video_lavit import add_video_lavit_tokens, layout_from_tokenizer
from .video_io import (
    DEFAULT_MAX_DURATION,
    MOTION_VECTOR_CODECS,
    VideoClip,
    VideoClipReader,
    VideoStreamInfo,
    iter_video_clips,
)
from .video_processing_video_lavit import VideoLaVITVideoProcessor
from .visualization import make_contact_sheet, motion_to_arrow_image, motion_to_hsv_image

__all__ = [
    "DEFAULT_MAX_DURATION",
    "MOTION_VECTOR_CODECS",
    "VideoClip",
    "VideoClipReader",
    "VideoLaVITGeneratedSequence",
    "VideoLaVITProcessor",
    "VideoLaVITVideoProcessor",
    "VideoStreamInfo",
    "add_video_lavit_tokens",
    "clip_motion_grid",
    "iter_video_clips",
    "layout_from_tokenizer",
    "make_contact_sheet",
    "make_sample_video",
    "motion_to_arrow_image",
    "motion_to_hsv_image",
    "pool_frame_motion_vectors",
    "sample_video_frames",
    "select_clip_starts",
]
