"""Video-LaVIT (arXiv 2402.03161) for the Hugging Face stack: videos as keyframe and motion tokens.

Importing the package registers its classes with the transformers Auto classes.
"""

from .errors import (
    CheckpointConversionError,
    CheckpointLoadError,
    EvaluationDataError,
    InvalidInputError,
    JudgeError,
    OutputError,
    UnknownOptionError,
    UnsupportedVideoError,
    VideoDecodeError,
    VideoLaVITError,
    VideoTooLongError,
)
from .media_tokenizers import (
    VectorQuantizer,
    VideoLaVITMotionTokenizer,
    VideoLaVITMotionTokenizerConfig,
    VideoLaVITVisualTokenDecoder,
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizer,
    VideoLaVITVisualTokenizerConfig,
)
from .media_tokenizers.token_layout import VideoLaVITTokenLayout
from .modeling import (
    QUANTIZATION_SKIP_MODULES,
    VideoLaVITConfig,
    VideoLaVITForConditionalGeneration,
    VideoLaVITKeyframeTokens,
    VideoLaVITModel,
    VideoLaVITPreTrainedModel,
)
from .processing import (
    VideoClip,
    VideoClipReader,
    VideoLaVITGeneratedSequence,
    VideoLaVITProcessor,
    VideoLaVITVideoProcessor,
    add_video_lavit_tokens,
    iter_video_clips,
    layout_from_tokenizer,
    make_contact_sheet,
    make_sample_video,
    motion_to_arrow_image,
    motion_to_hsv_image,
)
from .registration import (
    register_auto_classes,
)
from .video_text_to_text import VideoTextToTextPipeline, register_pipeline

__version__ = "0.1.0"

register_auto_classes()
register_pipeline()

# Imported on first use: the converters and pipelines import diffusers, which takes seconds and which reading videos,
# tokenizing and training the language model never need.
_LAZY = {
    "convert_detokenizer": ".conversion",
    "convert_language_model": ".conversion",
    "convert_motion_tokenizer": ".conversion",
    "convert_visual_tokenizer": ".conversion",
    "VideoLaVITDetokenizerPipeline": ".pipelines",
    "VideoLaVITDetokenizerPipelineOutput": ".pipelines",
    "VideoLaVITGenerator": ".pipelines",
    "VideoLaVITKeyframePipeline": ".pipelines",
    "VideoLaVITMotionConditionEncoder": ".pipelines",
    "VideoLaVITVideoUNet": ".pipelines",
    "VideoTokensOutput": ".pipelines",
    "generate_video_tokens": ".pipelines",
    "pad_left": ".pipelines",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "QUANTIZATION_SKIP_MODULES",
    "convert_detokenizer",
    "convert_language_model",
    "convert_motion_tokenizer",
    "convert_visual_tokenizer",
    "CheckpointConversionError",
    "EvaluationDataError",
    "JudgeError",
    "CheckpointLoadError",
    "InvalidInputError",
    "OutputError",
    "UnknownOptionError",
    "UnsupportedVideoError",
    "VideoDecodeError",
    "VideoLaVITError",
    "VideoTooLongError",
    "VideoLaVITConfig",
    "VideoLaVITForConditionalGeneration",
    "VideoLaVITKeyframeTokens",
    "VideoLaVITModel",
    "VideoLaVITPreTrainedModel",
    "VideoLaVITDetokenizerPipeline",
    "VideoLaVITDetokenizerPipelineOutput",
    "VideoLaVITGenerator",
    "VideoLaVITKeyframePipeline",
    "VideoLaVITMotionConditionEncoder",
    "VideoLaVITVideoUNet",
    "VideoTokensOutput",
    "generate_video_tokens",
    "pad_left",
    "VideoClip",
    "VideoClipReader",
    "VideoLaVITGeneratedSequence",
    "VideoLaVITProcessor",
    "VideoTextToTextPipeline",
    "VideoLaVITVideoProcessor",
    "add_video_lavit_tokens",
    "iter_video_clips",
    "layout_from_tokenizer",
    "make_contact_sheet",
    "make_sample_video",
    "motion_to_arrow_image",
    "motion_to_hsv_image",
    "register_auto_classes",
    "VectorQuantizer",
    "VideoLaVITMotionTokenizer",
    "VideoLaVITMotionTokenizerConfig",
    "VideoLaVITTokenLayout",
    "VideoLaVITVisualTokenDecoder",
    "VideoLaVITVisualTokenDecoderConfig",
    "VideoLaVITVisualTokenizer",
    "VideoLaVITVisualTokenizerConfig",
]
