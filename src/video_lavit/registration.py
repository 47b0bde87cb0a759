"""Registration of the package's classes with the transformers Auto classes (run on `import video_lavit`).

`AutoVideoProcessor` finds a processor class by the `video_processor_type` saved in its
`video_preprocessor_config.json`, among the classes registered with it; registration is keyed by a configuration
class, here the composite `VideoLaVITConfig`. `AutoProcessor` likewise finds `VideoLaVITProcessor` by the
`processor_class` saved in `processor_config.json`, among the classes registered with it (no `config.json` needed).
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoVideoProcessor,
)

from .media_tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from .media_tokenizers.configuration_visual_tokenizer import (
    VideoLaVITVisualTokenDecoderConfig,
    VideoLaVITVisualTokenizerConfig,
)
from .media_tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer
from .media_tokenizers.modeling_visual_token_decoder import VideoLaVITVisualTokenDecoder
from .media_tokenizers.modeling_visual_tokenizer import VideoLaVITVisualTokenizer
from .modeling.configuration_video_lavit import VideoLaVITConfig
from .modeling.modeling_video_lavit import VideoLaVITForConditionalGeneration, VideoLaVITModel
from .processing.processing_video_lavit import VideoLaVITProcessor
from .processing.video_processing_video_lavit import VideoLaVITVideoProcessor


def register_auto_classes() -> None:
    """Register every class with its Auto class. Safe to call twice."""
    AutoVideoProcessor.register(VideoLaVITConfig, VideoLaVITVideoProcessor, exist_ok=True)
    AutoProcessor.register(VideoLaVITConfig, VideoLaVITProcessor, exist_ok=True)
    for config_class, model_class in (
        (VideoLaVITMotionTokenizerConfig, VideoLaVITMotionTokenizer),
        (VideoLaVITVisualTokenizerConfig, VideoLaVITVisualTokenizer),
        (VideoLaVITVisualTokenDecoderConfig, VideoLaVITVisualTokenDecoder),
        (VideoLaVITConfig, VideoLaVITModel),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
    AutoModelForCausalLM.register(VideoLaVITConfig, VideoLaVITForConditionalGeneration, exist_ok=True)
    AutoModelForImageTextToText.register(VideoLaVITConfig, VideoLaVITForConditionalGeneration, exist_ok=True)
