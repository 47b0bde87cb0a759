"""Registration of the package's classes with the transformers Auto classes (run on `import video_lavit`).

`AutoVideoProcessor` finds a processor class by the `video_processor_type` saved in its
`video_preprocessor_config.json`, among the classes registered with it; registration is keyed by a configuration
class, and until the composite model configuration exists the processor is keyed by its own class.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoVideoProcessor

from .processing.video_processing_video_lavit import VideoLaVITVideoProcessor
from .tokenizers.configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from .tokenizers.modeling_motion_tokenizer import VideoLaVITMotionTokenizer


def register_auto_classes() -> None:
    """Register every class with its Auto class. Safe to call twice."""
    AutoVideoProcessor.register(VideoLaVITVideoProcessor, VideoLaVITVideoProcessor, exist_ok=True)
    AutoConfig.register(VideoLaVITMotionTokenizerConfig.model_type, VideoLaVITMotionTokenizerConfig, exist_ok=True)
    AutoModel.register(VideoLaVITMotionTokenizerConfig, VideoLaVITMotionTokenizer, exist_ok=True)
