"""Video-LaVIT (arXiv 2402.03161) for the Hugging Face stack: videos as keyframe and motion tokens.

Importing the package registers its classes with the transformers Auto classes.
"""

from .conversion import (
    convert_detokenizer,
    convert_language_model,
    convert_motion_tokenizer,
    convert_visual_tokenizer,
)
from .errors import (
    CheckpointConversionError,
    InvalidInputError,
    UnsupportedVideoError,
    VideoDecodeError,
    VideoLaVITError,
)
from .modeling import VideoLaVITConfig, VideoLaVITForCausalLM, VideoLaVITModel
from .pipelines import (
    VideoLaVITDetokenizerPipeline,
    VideoLaVITDetokenizerPipelineOutput,
    VideoLaVITGenerator,
    VideoLaVITMotionConditionEncoder,
    VideoLaVITVideoUNet,
)
from .processing import (
    VideoClip,
    VideoClipReader,
    VideoLaVITVideoProcessor,
    iter_video_clips,
    make_contact_sheet,
    make_sample_video,
    motion_to_arrow_image,
    motion_to_hsv_image,
)
from .registration import register_auto_classes
from .tokenizers import (
    VectorQuantizer,
    VideoLaVITMotionTokenizer,
    VideoLaVITMotionTokenizerConfig,
    VideoLaVITVisualTokenDecoder,
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizer,
    VideoLaVITVisualTokenizerConfig,
)

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "CheckpointConversionError",
    "InvalidInputError",
    "VectorQuantizer",
    "VideoLaVITMotionTokenizer",
    "VideoLaVITMotionTokenizerConfig",
    "VideoLaVITVideoUNet",
    "VideoLaVITVisualTokenDecoder",
    "VideoLaVITVisualTokenDecoderConfig",
    "VideoLaVITVisualTokenizer",
    "VideoLaVITVisualTokenizerConfig",
    "convert_detokenizer",
    "convert_language_model",
    "convert_motion_tokenizer",
    "convert_visual_tokenizer",
    "UnsupportedVideoError",
    "VideoClip",
    "VideoClipReader",
    "VideoDecodeError",
    "VideoLaVITConfig",
    "VideoLaVITDetokenizerPipeline",
    "VideoLaVITDetokenizerPipelineOutput",
    "VideoLaVITError",
    "VideoLaVITForCausalLM",
    "VideoLaVITGenerator",
    "VideoLaVITModel",
    "VideoLaVITMotionConditionEncoder",
    "VideoLaVITVideoProcessor",
    "iter_video_clips",
    "make_contact_sheet",
    "make_sample_video",
    "motion_to_arrow_image",
    "motion_to_hsv_image",
    "register_auto_classes",
]
